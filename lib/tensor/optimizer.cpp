#include "tensor/optimizer.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/threads.h"

namespace gen {

namespace {
constexpr size_t kChunk = size_t{1} << 14;  // floats per unit of work: 64 KiB of each array
// One view's stretch of AdamW. One loop for every width: GCC (-O3, -fno-math-errno, so that
// std::sqrt becomes vsqrtps) vectorizes it with zmm, ymm or xmm registers as the target has
// them, the tail with the same operations one at a time.
void adamw_update(float* __restrict w, float* __restrict m, float* __restrict v, const float* __restrict g,
                  size_t n, float lr, float decay, float grad_scale, float b1, float b2, float eps, float correction1,
                  float correction2) {
  for (size_t i = 0; i < n; ++i) {
    const float gi = g[i] * grad_scale;  // exactly g[i] when the scale is 1
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    float m_hat = m[i] / correction1;
    float v_hat = v[i] / correction2;
    // Decoupled decay first, as torch.optim.AdamW: w -= lr wd w; w -= lr m/(sqrt(v) + eps).
    w[i] -= decay * w[i];
    w[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
}

}  // namespace

void AdamW::step(Parameters& params, float lr, float grad_scale) {
  ++t_;
  const float b1 = config_.beta1, b2 = config_.beta2, eps = config_.eps;
  const float correction1 = 1.0f - std::pow(b1, static_cast<float>(t_));
  const float correction2 = 1.0f - std::pow(b2, static_cast<float>(t_));
  // The decay of each parameter, per chunk of kChunk, so that the loop over chunks splits
  // across threads however the views fall.
  const size_t n = params.size(), chunks = (n + kChunk - 1) / kChunk;
  float* w = params.values();
  const float* g = params.grads();
  float* m = m_.data();
  float* v = v_.data();
  const auto& views = params.views();
  const int threads = threads_for_pass(static_cast<int64_t>(n));
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (size_t chunk = 0; chunk < chunks; ++chunk) {
    const size_t begin = chunk * kChunk, end = std::min(n, begin + kChunk);
    // The views that overlap this chunk (views are in order and cover the buffer).
    auto view = std::upper_bound(views.begin(), views.end(), begin,
                                 [](size_t offset, const Parameters::View& x) { return offset < x.offset; });
    for (--view; view != views.end() && view->offset < end; ++view) {
      const float decay = view->decay ? lr * config_.weight_decay : 0.0f;
      const size_t lo = std::max(begin, view->offset), hi = std::min(end, view->offset + view->size);
      adamw_update(w + lo, m + lo, v + lo, g + lo, hi - lo, lr, decay, grad_scale, b1, b2, eps, correction1,
                   correction2);
    }
  }
}

float grad_norm(const Parameters& params) {
  const size_t n = params.size(), chunks = (n + kChunk - 1) / kChunk;
  const float* g = params.grads();
  std::vector<double> partial(chunks, 0.0);
  const int threads = threads_for_pass(static_cast<int64_t>(n));
#pragma omp parallel for num_threads(threads) if (threads > 1) schedule(static)
  for (size_t chunk = 0; chunk < chunks; ++chunk) {
    double sum = 0;
    const size_t end = std::min(n, (chunk + 1) * kChunk);
#pragma omp simd reduction(+ : sum)
    for (size_t i = chunk * kChunk; i < end; ++i) sum += static_cast<double>(g[i]) * g[i];
    partial[chunk] = sum;
  }
  double sum = 0;
  for (double p : partial) sum += p;
  return static_cast<float>(std::sqrt(sum));
}

float clip_scale(float norm, float max_norm) {
  return max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6f) : 1.0f;  // as torch.nn.utils.clip_grad_norm_
}

float clip_grad_norm(Parameters& params, float max_norm) {
  float norm = grad_norm(params);
  float scale = clip_scale(norm, max_norm);
  if (scale != 1.0f) {
    float* grads = params.grads();
    for (size_t i = 0; i < params.size(); ++i) grads[i] *= scale;
  }
  return norm;
}

float cosine_lr(int64_t step, const LrSchedule& s) {
  if (step < s.warmup) return s.lr * static_cast<float>(step + 1) / static_cast<float>(s.warmup + 1);
  if (step > s.decay_steps) return s.min_lr;
  double ratio = static_cast<double>(step - s.warmup) / static_cast<double>(std::max<int64_t>(1, s.decay_steps - s.warmup));
  double coefficient = 0.5 * (1.0 + std::cos(M_PI * ratio));
  return static_cast<float>(s.min_lr + coefficient * (s.lr - s.min_lr));
}

}  // namespace gen
