// Activations, pooling and normalization for the classifier and the GAN (and any image model
// that wants them; the GAN's losses are in tensor/gan_losses.h), with the conventions of
// kernels.h: forward writes, backward accumulates (+=) into the gradient of its input, a null
// gradient pointer means "not needed", templates over float and double (the finite-difference
// checks in tests/unit/test_activations.cpp run in double).
//
//   nn::relu_forward(out, inp, n);              nn::relu_backward(dinp, inp, dout, n);
//   nn::global_avg_pool_forward(out, inp, BC, HW);
//   nn::batchnorm_sums(sums, inp, B, C, HW);  nn::batchnorm_forward(out, mean, rstd, sums, B * HW, inp, w, b, B, C, HW);
#pragma once

#include <cstdint>

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

// Batch normalization (Ioffe and Szegedy 2015; PyTorch's BatchNorm1d/2d): each channel of a
// batch [B,C,HW] is normalized over its B x HW values with their mean and biased variance (eps
// 1e-5), then scaled and shifted: out = (inp - mean[c]) rstd[c] w[c] + b[c], rstd = 1/sqrt(var +
// 1e-5). In two halves, so that a batch in shards (tensor/shards.h) can add its sums up across
// them first: batchnorm_sums adds each channel's sum of x to sums[c] and of x^2 to sums[C + c]
// (doubles); batchnorm_forward then normalizes inp with the statistics of sums over n values,
// saving mean[C] and rstd[C] for backward.
template <typename T>
void batchnorm_sums(double* sums, const T* inp, int64_t B, int64_t C, int64_t HW);
template <typename T>
void batchnorm_forward(T* out, T* mean, T* rstd, const double* sums, double n, const T* inp, const T* w, const T* b,
                       int64_t B, int64_t C, int64_t HW);
// The biased variance of channel c from those sums.
double batchnorm_variance(const double* sums, int64_t C, int64_t c, double n);
// Backward, in halves too: batchnorm_backward_sums adds each channel's sum of dout to sums[c] and
// of dout xhat (xhat the normalized input) to sums[C + c]. With the whole batch's sums (total,
// over its n values) and this part's own (mine): dinp[B,C,HW] += rstd w (dout - mean(dout) -
// xhat mean(dout xhat)), the means over the batch; dw[C] += mine's sums of dout xhat, db[C] +=
// mine's sums of dout.
template <typename T>
void batchnorm_backward_sums(double* sums, const T* dout, const T* inp, const T* mean, const T* rstd, int64_t B,
                             int64_t C, int64_t HW);
template <typename T>
void batchnorm_backward(T* dinp, T* dw, T* db, const double* mine, const double* total, double n, const T* dout,
                        const T* inp, const T* w, const T* mean, const T* rstd, int64_t B, int64_t C, int64_t HW);
// Evaluation mode: the same map with stored statistics, out = (inp - running_mean[c]) /
// sqrt(running_var[c] + 1e-5) w[c] + b[c].
template <typename T>
void batchnorm_inference(T* out, const T* inp, const T* w, const T* b, const T* running_mean,
                         const T* running_var, int64_t B, int64_t C, int64_t HW);

// Elementwise product out[n] = a[n] b[n]; backward: da += dout b, db += dout a (either null; da
// may be db, for a * a).
template <typename T>
void mul_forward(T* out, const T* a, const T* b, int64_t n);
template <typename T>
void mul_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n);

}  // namespace gen::nn
