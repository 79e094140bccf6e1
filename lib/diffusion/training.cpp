#include "diffusion/training.h"

#include <algorithm>

#include "io/image.h"

namespace gen {

void diffusion_batch(const Dataset& set, const Schedule& schedule, int64_t classes, float cond_drop, Rng& rng,
                     int64_t B, DiffusionBatch& batch) {
  const int S = set.height, C = set.channels;
  const int64_t P = static_cast<int64_t>(set.image_size());
  batch.x0.resize(static_cast<size_t>(B * P));
  batch.eps.resize(batch.x0.size());
  batch.xt.resize(batch.x0.size());
  batch.t.resize(static_cast<size_t>(B));
  batch.labels.resize(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const uint32_t i = rng.below(static_cast<uint32_t>(set.count));
    hwc_to_floats(set.image_data(static_cast<int>(i)), S, S, C, batch.x0.data() + b * P);
    uint32_t label = classes > 0 ? set.labels[i] : 0;
    if (classes > 0 && rng.uniform() < cond_drop) label = static_cast<uint32_t>(classes);
    batch.labels[static_cast<size_t>(b)] = label;
    const int64_t t = rng.below(static_cast<uint32_t>(schedule.T()));
    batch.t[static_cast<size_t>(b)] = static_cast<float>(t);
    for (int64_t k = 0; k < P; ++k) batch.eps[static_cast<size_t>(b * P + k)] = rng.normal();
    schedule.noise(batch.xt.data() + b * P, batch.x0.data() + b * P, batch.eps.data() + b * P, P, t);
  }
}

void ema_update(float* ema, const float* w, size_t n, int64_t step, float decay) {
  const float d = std::min(decay, (1.0f + static_cast<float>(step)) / (10.0f + static_cast<float>(step)));
  for (size_t k = 0; k < n; ++k) ema[k] = d * ema[k] + (1 - d) * w[k];
}

}  // namespace gen
