// Activations, pooling, normalization and losses for the classifier and the GAN (and any image
// model that wants them), with the conventions of kernels.h: forward writes, backward
// accumulates (+=) into the gradient of its input, a null gradient pointer means "not needed",
// templates over float and double (the finite-difference checks in
// tests/unit/test_activations.cpp run in double).
//
//   nn::relu_forward(out, inp, n);              nn::relu_backward(dinp, inp, dout, n);
//   nn::global_avg_pool_forward(out, inp, BC, HW);
//   nn::batchnorm_forward(out, mean, rstd, inp, w, b, B, C, HW);
//   double loss = nn::gan_loss_forward(logits, signs, n, GanLoss::hinge);
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

// ReLU: out = max(x, 0), elementwise over n values; backward passes dout where x > 0 (the
// gradient at exactly 0 is taken as 0, as PyTorch does).
template <typename T>
void relu_forward(T* out, const T* inp, int64_t n);
template <typename T>
void relu_backward(T* dinp, const T* inp, const T* dout, int64_t n);

// Global average pooling: inp[BC, HW] (an NCHW tensor seen as B*C planes) -> out[BC], the mean
// of each plane; backward spreads dout / HW over the plane.
template <typename T>
void global_avg_pool_forward(T* out, const T* inp, int64_t BC, int64_t HW);
template <typename T>
void global_avg_pool_backward(T* dinp, const T* dout, int64_t BC, int64_t HW);

// Leaky ReLU: out = x where x > 0, slope x elsewhere, over n values; backward passes dout where
// x > 0 and slope dout elsewhere (at exactly 0 the slope, as PyTorch).
template <typename T>
void leaky_relu_forward(T* out, const T* inp, int64_t n, T slope);
template <typename T>
void leaky_relu_backward(T* dinp, const T* inp, const T* dout, int64_t n, T slope);

// tanh over n values; backward from the output: dinp += dout (1 - out^2).
template <typename T>
void tanh_forward(T* out, const T* inp, int64_t n);
template <typename T>
void tanh_backward(T* dinp, const T* out, const T* dout, int64_t n);

// Batch normalization (Ioffe and Szegedy 2015; PyTorch's BatchNorm1d/2d): each channel of
// inp[B,C,HW] is normalized over its B x HW values with the batch's mean and biased variance
// (eps 1e-5), then scaled and shifted: out = (inp - mean[c]) rstd[c] w[c] + b[c],
// rstd = 1/sqrt(var + 1e-5). mean[C], rstd[C] saved for backward.
template <typename T>
void batchnorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t B, int64_t C,
                       int64_t HW);
// dinp[B,C,HW] += rstd w (dout - mean(dout) - xhat mean(dout xhat)) per channel, xhat the
// normalized input; dw[C] += sum of dout xhat; db[C] += sum of dout.
template <typename T>
void batchnorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t B, int64_t C, int64_t HW);
// Evaluation mode: the same map with stored statistics, out = (inp - running_mean[c]) /
// sqrt(running_var[c] + 1e-5) w[c] + b[c].
template <typename T>
void batchnorm_inference(T* out, const T* inp, const T* w, const T* b, const T* running_mean,
                         const T* running_var, int64_t B, int64_t C, int64_t HW);

// A GAN loss (GanLoss above) on logits[n] with signs[n] (+1 real, -1 fake): returns the mean
// over the n values of f(signs[i] logits[i]), in double; bce is computed stably,
// softplus(-u) = max(-u, 0) + log1p(exp(-|u|)). Backward adds weight d(mean)/dlogits to dlogits:
// weight signs[i] f'(u_i) / n (hinge: f' = -1 where u < 1, else 0).
template <typename T>
double gan_loss_forward(const T* logits, const float* signs, int64_t n, GanLoss kind);
template <typename T>
void gan_loss_backward(T* dlogits, const T* logits, const float* signs, int64_t n, GanLoss kind, T weight);

// Elementwise product out[n] = a[n] b[n]; backward: da += dout b, db += dout a (either null; da
// may be db, for a * a).
template <typename T>
void mul_forward(T* out, const T* a, const T* b, int64_t n);
template <typename T>
void mul_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n);

// The gradient penalty of WGAN-GP (Gulrajani et al. 2017, eq. 3, without its weight lambda):
// g[N,D] holds N rows; returns mean over rows of (||g_n||_2 - 1)^2, in double. Backward adds
// weight 2 (||g_n|| - 1) / ||g_n|| g_n / N to dg (nothing for a row whose norm is 0).
template <typename T>
double gradient_penalty_forward(const T* g, int64_t N, int64_t D);
template <typename T>
void gradient_penalty_backward(T* dg, const T* g, int64_t N, int64_t D, T weight);

}  // namespace gen::nn
