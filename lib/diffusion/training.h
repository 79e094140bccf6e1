// How a denoiser learns (Ho et al. 2020, algorithm 1): take a training image x0, a random step
// t and Gaussian noise eps; noise the image to x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps; the
// loss is the mean squared error between eps and the denoiser's prediction from (x_t, t). For
// classifier-free guidance the class is replaced by "no class" for a share of the images.
// Sampling uses an exponential moving average of the weights, which is smoother than the
// weights of any one step.
//
//   gen::DiffusionBatch batch;
//   gen::diffusion_batch(set, schedule, classes, cond_drop, rng, B, batch);  // x_t, t, labels, eps
//   ... loss = mse(unet(batch.xt, batch.t, batch.labels), batch.eps) ...
//   gen::ema_update(ema, weights, n, step, 0.999f);
#pragma once

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "diffusion/diffusion.h"
#include "io/idx.h"

namespace gen {

struct DiffusionBatch {
  std::vector<float> x0, eps, xt;  // [B, C, S, S] each: the images, the noise, the noised images
  std::vector<float> t;            // [B] the steps, as floats (the time embedding's input)
  std::vector<uint32_t> labels;    // [B] the classes (`classes` = none), 0 when unconditional
};

// B images drawn from the set, each with its class (dropped to "no class" with probability
// cond_drop when classes > 0), a step in 0..T-1 and noise, all from rng in that order.
void diffusion_batch(const Dataset& set, const Schedule& schedule, int64_t classes, float cond_drop, Rng& rng,
                     int64_t B, DiffusionBatch& batch);

// ema = d ema + (1 - d) w over n values, with d = min(decay, (1 + step) / (10 + step)): early on
// a shorter memory, so that the average does not keep the noise of the first steps (as many DDPM
// implementations do).
void ema_update(float* ema, const float* w, size_t n, int64_t step, float decay);

}  // namespace gen
