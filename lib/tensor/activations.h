// Activations and pooling for the classifier (and any image model that wants them), with the
// conventions of kernels.h: forward writes, backward accumulates (+=) into the gradient of its
// input, a null gradient pointer means "not needed", templates over float and double (the
// finite-difference checks in tests/unit/test_activations.cpp run in double).
//
//   nn::relu_forward(out, inp, n);              nn::relu_backward(dinp, inp, dout, n);
//   nn::global_avg_pool_forward(out, inp, BC, HW);
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

}  // namespace gen::nn
