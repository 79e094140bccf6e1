// The losses of a GAN: what the detective (discriminator) and the forger (generator) each
// minimize, on the discriminator's logits; and WGAN-GP's gradient penalty. Conventions of
// kernels.h: backward accumulates (+=), a null gradient means "not needed", templates over
// float and double (the finite-difference checks run in double).
//
//   double d_loss = nn::gan_loss_forward(logits, signs, 2 * B, GanLoss::bce);   // real +1, fake -1
//   double penalty = nn::gradient_penalty_forward(input_gradient, B, C * S * S);
#pragma once

#include <cstdint>

namespace gen {

// The loss of a GAN on the discriminator's logits, per value u = sign * logit (sign +1 for a
// real image, -1 for a fake): bce softplus(-u) (the standard GAN, binary cross-entropy on
// logits), hinge relu(1 - u) (the hinge loss of SNGAN/BigGAN's discriminator), linear -u (the
// WGAN critic and generator).
enum class GanLoss { bce, hinge, linear };

}  // namespace gen

namespace gen::nn {

// A GAN loss (GanLoss above) on logits[n] with signs[n] (+1 real, -1 fake): returns the mean
// over the n values of f(signs[i] logits[i]), in double; bce is computed stably,
// softplus(-u) = max(-u, 0) + log1p(exp(-|u|)). Backward adds weight d(mean)/dlogits to dlogits:
// weight signs[i] f'(u_i) / n (hinge: f' = -1 where u < 1, else 0).
template <typename T>
double gan_loss_forward(const T* logits, const float* signs, int64_t n, GanLoss kind);
template <typename T>
void gan_loss_backward(T* dlogits, const T* logits, const float* signs, int64_t n, GanLoss kind, T weight);

// The gradient penalty of WGAN-GP (Gulrajani et al. 2017, eq. 3, without its weight lambda):
// g[N,D] holds N rows; returns mean over rows of (||g_n||_2 - 1)^2, in double. Backward adds
// weight 2 (||g_n|| - 1) / ||g_n|| g_n / N to dg (nothing for a row whose norm is 0).
template <typename T>
double gradient_penalty_forward(const T* g, int64_t N, int64_t D);
template <typename T>
void gradient_penalty_backward(T* dg, const T* g, int64_t N, int64_t D, T weight);

}  // namespace gen::nn
