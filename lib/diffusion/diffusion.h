// Diffusion: the forward process that buries an image in noise step by step, and the reverse
// process that a denoiser walks back (Ho et al. 2020, "DDPM"; Song et al. 2021, "DDIM").
//
// Steps run 0..T-1; x_0 is the image (values in [-1, 1]) and x_t = sqrt(abar_t) x_0 +
// sqrt(1 - abar_t) eps with eps ~ N(0, I), where abar_t is the product of (1 - beta_s) for
// s <= t. The denoiser predicts eps from (x_t, t).
//
//   gen::Schedule s(gen::Schedule::Kind::linear, 1000);
//   s.noise(xt, x0, eps, n, t);                                  // the forward process
//   gen::DiffusionSampler sampler{.steps = 50, .eta = 0};                  // DDIM; eta 1 = DDPM
//   sampler.run(s, x, n_images, pixels, predict_eps, rngs);     // the reverse process
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/rng.h"

namespace gen {

class Schedule {
 public:
  // linear: beta from 1e-4 to 0.02 (DDPM); cosine: abar_t = cos^2(((t+1)/T + s)/(1 + s) pi/2)
  // normalized, s = 0.008, betas capped at 0.999 (Nichol and Dhariwal 2021).
  enum class Kind { linear, cosine };
  Schedule(Kind kind, int64_t T);
  static Kind parse(const std::string& name);  // "linear" or "cosine"; throws UsageError
  static const char* name(Kind kind);

  Kind kind() const { return kind_; }
  int64_t T() const { return static_cast<int64_t>(abar_.size()); }
  double abar(int64_t t) const { return t < 0 ? 1.0 : abar_[static_cast<size_t>(t)]; }  // abar_{-1} = 1
  double beta(int64_t t) const { return beta_[static_cast<size_t>(t)]; }

  // xt[n] = sqrt(abar_t) x0[n] + sqrt(1 - abar_t) eps[n].
  void noise(float* xt, const float* x0, const float* eps, int64_t n, int64_t t) const;

 private:
  Kind kind_;
  std::vector<double> beta_, abar_;
};

// The reverse process as generalized DDIM steps from t to an earlier step t', with
// sigma = eta sqrt((1 - abar_t') / (1 - abar_t) (1 - abar_t / abar_t')):
//   x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), clamped to [-1, 1], and eps recomputed
//   from the clamped x0 (clamping x0 but keeping a guidance-inflated eps breaks guided
//   sampling); x_t' = sqrt(abar_t') x0 + sqrt(1 - abar_t' - sigma^2) eps + sigma z.
// eta = 0 is DDIM (deterministic given x_T); eta = 1 over every step is DDPM's ancestral
// sampler (the posterior mean and variance); eta = 1 over fewer steps is DDPM on a subsequence.
//
// DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
// Probabilistic Models") solves the same reverse process as an ODE in lambda = log(alpha /
// sigma) (alpha = sqrt(abar), sigma = sqrt(1 - abar)), with the denoiser as a predictor of x0
// (clamped like DDIM's). DDIM is its first-order step:
//   x_t' = (sigma_t' / sigma_t) x_t - alpha_t' (e^-h - 1) D,   h = lambda_t' - lambda_t,
// with D = x0. The second-order multistep method keeps the previous step's x0 and extrapolates
// along lambda: D = (1 + 1/(2r)) x0 - 1/(2r) x0_prev, r = h_prev / h. The first step has no
// previous x0 and the last (to the image, sigma = 0) is x0 itself. Its steps are evenly
// spaced in lambda down to step 0 (the ratio r stays near 1, where the extrapolation is stable;
// DDIM's even spacing in t leaves one large step in lambda at the end). It reaches DDIM-50's
// images in 10 to 20 denoiser calls.
// The random streams of images begin..end-1 under seed: image i's noise (its start and every
// step's) comes from stream i alone, so that it is the same whichever images are sampled beside
// it, in one process or split across ranks.
std::vector<Rng> image_streams(uint64_t seed, int64_t begin, int64_t end);

struct DiffusionSampler {
  enum class Method { ddim, dpmpp_2m };
  // A sampler by its command-line name: "ddim" (eta 0), "ddpm" (DDIM with eta 1: DDPM's
  // posterior noise at every step) or "dpm++2m"; nothing for any other name.
  static std::optional<DiffusionSampler> named(const std::string& name);

  Method method = Method::ddim;
  int64_t steps = 50;   // number of denoiser calls
  double eta = 0.0;     // ddim only
  bool clamp = true;

  // The steps visited, from `start` (T-1 for sampling from noise) down, each followed by a
  // step to the next and the last by one into t' = -1 (the image). DDIM: evenly spaced in t,
  // "trailing" (start - i (start + 1) / steps), so that sampling from noise starts at T-1.
  // DPM-Solver++: evenly spaced in lambda from start to 0 (the nearest steps, kept distinct).
  // Either way exactly min(steps, start + 1) of them.
  std::vector<int64_t> timesteps(const Schedule& s, int64_t start) const;

  // predict(x, t, eps): eps for the images x [images, pixels] at step t.
  using Predict = std::function<void(const float* x, int64_t t, float* eps)>;
  // Called after each step with the step index (0..), the step reached and x at that step.
  using Observe = std::function<void(int64_t index, int64_t t, const float* x)>;
  // Runs the reverse process on x [images, pixels] from step `start` (x is x_start on entry,
  // x_0 on return). Image i's noise comes from rngs[i] (its own stream: an image depends on
  // its seed and index, not on which others are sampled with it).
  void run(const Schedule& s, float* x, int64_t images, int64_t pixels, int64_t start, const Predict& predict,
           std::vector<Rng>& rngs, const Observe& observe = nullptr) const;
};

}  // namespace gen
