// Classifier-free guidance (Ho and Salimans 2022): one denoiser trained both with the class and,
// for a share of its batches, without it ("no class" is the extra label `classes`); at sampling
// time the two predictions are pushed apart:
//   eps = eps(x, none) + w (eps(x, class) - eps(x, none))
// w = 1 is the conditional model alone, w = 0 the unconditional one, w > 1 trades variety for
// images that look more like their class. Both halves run in one batch. A negative prompt takes
// the place of "none" (as in stable-diffusion's negative prompts): eps(x, away) + w (eps(x,
// class) - eps(x, away)) steers towards the class and away from that one.
//
//   gen::GuidedDenoiser denoiser(model, config, labels, /*guidance=*/3.0);
//   sampler.run(schedule, x, n, pixels, T - 1,
//               [&](const float* xt, int64_t t, float* eps) { denoiser(xt, t, eps, n); }, rngs);
#pragma once

#include <cstdint>
#include <vector>

#include "models/unet.h"
#include "tensor/tensor.h"

namespace gen {

class GuidedDenoiser {
 public:
  // labels: one per image (config.classes means "no class"); guidance w (1: no guidance); away:
  // the class guidance pushes away from (config.classes, "no class", by default).
  static constexpr uint32_t kNoClass = UINT32_MAX;
  GuidedDenoiser(Unet& model, std::vector<uint32_t> labels, double guidance, uint32_t away = kNoClass)
      : model_(model), labels_(std::move(labels)), guidance_(guidance), away_(away) {}
  // eps [n, pixels] for the images x [n, pixels] at step t.
  void operator()(const float* x, int64_t t, float* eps, int64_t n);

  // Images per forward pass: an inference pass still keeps every activation of its batch (about
  // 2 MB per image for the default U-Net), so large n go through in chunks (a forward pass takes
  // the same time per image from 16 images to 128 here).
  static constexpr int64_t kChunk = 16;

 private:
  // Images first..first+n-1 (their labels), at x and eps.
  void chunk(const float* x, int64_t t, float* eps, int64_t first, int64_t n);
  int64_t pixels() const;

  Unet& model_;
  std::vector<uint32_t> labels_;
  double guidance_;
  uint32_t away_;
  Arena arena_;
};

}  // namespace gen
