#include "tensor/activations.h"

#include <algorithm>

namespace gen::nn {

template <typename T>
void relu_forward(T* out, const T* inp, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 18))
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] > T(0) ? inp[i] : T(0);
}

template <typename T>
void relu_backward(T* dinp, const T* inp, const T* dout, int64_t n) {
  if (!dinp) return;
#pragma omp parallel for simd schedule(static) if (n > (1 << 18))
  for (int64_t i = 0; i < n; ++i) dinp[i] += inp[i] > T(0) ? dout[i] : T(0);
}

template <typename T>
void global_avg_pool_forward(T* out, const T* inp, int64_t BC, int64_t HW) {
  const T scale = T(1) / static_cast<T>(HW);
  for (int64_t p = 0; p < BC; ++p) {
    const T* plane = inp + p * HW;
    T sum = 0;
    for (int64_t i = 0; i < HW; ++i) sum += plane[i];
    out[p] = sum * scale;
  }
}

template <typename T>
void global_avg_pool_backward(T* dinp, const T* dout, int64_t BC, int64_t HW) {
  if (!dinp) return;
  const T scale = T(1) / static_cast<T>(HW);
  for (int64_t p = 0; p < BC; ++p) {
    T g = dout[p] * scale;
    T* plane = dinp + p * HW;
    for (int64_t i = 0; i < HW; ++i) plane[i] += g;
  }
}

#define GEN_INSTANTIATE(T)                                                     \
  template void relu_forward<T>(T*, const T*, int64_t);                        \
  template void relu_backward<T>(T*, const T*, const T*, int64_t);             \
  template void global_avg_pool_forward<T>(T*, const T*, int64_t, int64_t);   \
  template void global_avg_pool_backward<T>(T*, const T*, int64_t, int64_t);
GEN_INSTANTIATE(float)
GEN_INSTANTIATE(double)
#undef GEN_INSTANTIATE

}  // namespace gen::nn
