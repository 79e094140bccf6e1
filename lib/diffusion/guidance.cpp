#include "diffusion/guidance.h"

#include <algorithm>

#include "tensor/graph.h"

namespace gen {

int64_t GuidedDenoiser::pixels() const {
  const UnetConfig& c = model_.config();
  return c.image_channels * c.image_size * c.image_size;
}

void GuidedDenoiser::operator()(const float* x, int64_t t, float* eps, int64_t n) {
  for (int64_t start = 0; start < n; start += kChunk)
    chunk(x + start * pixels(), t, eps + start * pixels(), start, std::min(kChunk, n - start));
}

void GuidedDenoiser::chunk(const float* x, int64_t t, float* eps, int64_t first, int64_t n) {
  const UnetConfig& c = model_.config();
  const int64_t C = c.image_channels, S = c.image_size, P = pixels();
  const bool guided = c.classes > 0 && guidance_ != 1;
  const int64_t B = guided ? 2 * n : n;
  std::vector<float> ts(static_cast<size_t>(B), static_cast<float>(t));
  std::vector<uint32_t> ls(labels_.begin() + first, labels_.begin() + first + n);
  arena_.reset();
  Graph g(arena_, false);
  Tensor input = g.tensor({B, C, S, S});
  std::copy(x, x + n * P, input.data);
  if (guided) {  // the second half: the same images, no class (or the class to steer away from)
    std::copy(x, x + n * P, input.data + n * P);
    ls.resize(static_cast<size_t>(B), away_ == kNoClass ? static_cast<uint32_t>(c.classes) : away_);
  }
  Tensor out = model_.forward(g, input, ts.data(), ls.data());
  if (!guided) {
    std::copy(out.data, out.data + n * P, eps);
    return;
  }
  const float w = static_cast<float>(guidance_);
  for (int64_t k = 0; k < n * P; ++k) eps[k] = out.data[n * P + k] + w * (out.data[k] - out.data[n * P + k]);
}

}  // namespace gen
