#include "tensor/activations.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/fast_math.h"

namespace gen::nn {

namespace {

// Values below which a kernel stays on one thread: below this, starting the threads costs more
// than the loop (the elementwise kernels; a per-channel or per-row loop counts its whole input).
constexpr int64_t kParallelValues = int64_t{1} << 18;

constexpr double kBatchnormEps = 1e-5;

}  // namespace

template <typename T>
void relu_forward(T* out, const T* inp, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n > (1 << 18))
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] > T(0) ? inp[i] : T(0);
}

template <typename T>
void relu_backward(T* dinp, const T* inp, const T* dout, int64_t n) {
  if (!dinp) return;
#pragma omp parallel for simd schedule(static) if (parallel : n > (1 << 18))
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

template <typename T>
void leaky_relu_forward(T* out, const T* inp, int64_t n, T slope) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelValues)
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] > T(0) ? inp[i] : slope * inp[i];
}

template <typename T>
void leaky_relu_backward(T* dinp, const T* inp, const T* dout, int64_t n, T slope) {
  if (!dinp) return;
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelValues)
  for (int64_t i = 0; i < n; ++i) dinp[i] += inp[i] > T(0) ? dout[i] : slope * dout[i];
}

template <typename T>
void tanh_forward(T* out, const T* inp, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelValues)
  for (int64_t i = 0; i < n; ++i) out[i] = fast_tanh(inp[i]);
}

template <typename T>
void tanh_backward(T* dinp, const T* out, const T* dout, int64_t n) {
  if (!dinp) return;
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelValues)
  for (int64_t i = 0; i < n; ++i) dinp[i] += dout[i] * (T(1) - out[i] * out[i]);
}

// Batch normalization: a channel per iteration (its B planes of HW values), statistics in double.
template <typename T>
void batchnorm_sums(double* sums, const T* inp, int64_t B, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) if (B * C * HW > kParallelValues)
  for (int64_t c = 0; c < C; ++c) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < B; ++i) {
      const T* x = inp + (i * C + c) * HW;
#pragma omp simd reduction(+ : sum, sq)
      for (int64_t p = 0; p < HW; ++p) {
        const double v = static_cast<double>(x[p]);
        sum += v;
        sq += v * v;
      }
    }
    sums[c] += sum;
    sums[C + c] += sq;
  }
}

double batchnorm_variance(const double* sums, int64_t C, int64_t c, double n) {
  const double m = sums[c] / n;
  return std::max(0.0, sums[C + c] / n - m * m);
}

template <typename T>
void batchnorm_forward(T* out, T* mean, T* rstd, const double* sums, double n, const T* inp, const T* w, const T* b,
                       int64_t B, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) if (B * C * HW > kParallelValues)
  for (int64_t c = 0; c < C; ++c) {
    const double m = sums[c] / n;
    const T r = static_cast<T>(1.0 / std::sqrt(batchnorm_variance(sums, C, c, n) + kBatchnormEps));
    mean[c] = static_cast<T>(m);
    rstd[c] = r;
    const T scale = r * w[c], shift = b[c] - static_cast<T>(m) * scale;
    for (int64_t i = 0; i < B; ++i) {
      const T* x = inp + (i * C + c) * HW;
      T* o = out + (i * C + c) * HW;
#pragma omp simd
      for (int64_t p = 0; p < HW; ++p) o[p] = x[p] * scale + shift;
    }
  }
}

template <typename T>
void batchnorm_backward_sums(double* sums, const T* dout, const T* inp, const T* mean, const T* rstd, int64_t B,
                             int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) if (B * C * HW > kParallelValues)
  for (int64_t c = 0; c < C; ++c) {
    const T m = mean[c];
    double sd = 0, sdx = 0;  // sums of dout and of dout (x - mean)
    for (int64_t i = 0; i < B; ++i) {
      const T* x = inp + (i * C + c) * HW;
      const T* d = dout + (i * C + c) * HW;
#pragma omp simd reduction(+ : sd, sdx)
      for (int64_t p = 0; p < HW; ++p) {
        sd += static_cast<double>(d[p]);
        sdx += static_cast<double>(d[p]) * static_cast<double>(x[p] - m);
      }
    }
    sums[c] += sd;
    sums[C + c] += sdx * static_cast<double>(rstd[c]);  // the sum of dout xhat
  }
}

template <typename T>
void batchnorm_backward(T* dinp, T* dw, T* db, const double* mine, const double* total, double n, const T* dout,
                        const T* inp, const T* w, const T* mean, const T* rstd, int64_t B, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) if (B * C * HW > kParallelValues)
  for (int64_t c = 0; c < C; ++c) {
    if (db) db[c] += static_cast<T>(mine[c]);
    if (dw) dw[c] += static_cast<T>(mine[C + c]);
    if (!dinp) continue;
    const T m = mean[c], r = rstd[c], wc = w[c], g_mean = static_cast<T>(static_cast<double>(wc) * total[c] / n),
            gx_mean = static_cast<T>(static_cast<double>(wc) * total[C + c] / n);
    for (int64_t i = 0; i < B; ++i) {
      const T* x = inp + (i * C + c) * HW;
      const T* d = dout + (i * C + c) * HW;
      T* dx = dinp + (i * C + c) * HW;
#pragma omp simd
      for (int64_t p = 0; p < HW; ++p) dx[p] += r * (d[p] * wc - g_mean - (x[p] - m) * r * gx_mean);
    }
  }
}

template <typename T>
void batchnorm_inference(T* out, const T* inp, const T* w, const T* b, const T* running_mean,
                         const T* running_var, int64_t B, int64_t C, int64_t HW) {
#pragma omp parallel for schedule(static) if (B * C * HW > kParallelValues)
  for (int64_t bc = 0; bc < B * C; ++bc) {
    const int64_t c = bc % C;
    const T scale = static_cast<T>(static_cast<double>(w[c]) /
                                   std::sqrt(static_cast<double>(running_var[c]) + kBatchnormEps)),
            shift = b[c] - running_mean[c] * scale;
    const T* x = inp + bc * HW;
    T* o = out + bc * HW;
#pragma omp simd
    for (int64_t p = 0; p < HW; ++p) o[p] = x[p] * scale + shift;
  }
}

template <typename T>
void mul_forward(T* out, const T* a, const T* b, int64_t n) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelValues)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

template <typename T>
void mul_backward(T* da, T* db, const T* dout, const T* a, const T* b, int64_t n) {
  // Two loops, not one: da may be db.
  if (da) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelValues)
    for (int64_t i = 0; i < n; ++i) da[i] += dout[i] * b[i];
  }
  if (db) {
#pragma omp parallel for simd schedule(static) if (parallel : n > kParallelValues)
    for (int64_t i = 0; i < n; ++i) db[i] += dout[i] * a[i];
  }
}

#define GEN_INSTANTIATE(T)                                                                                         \
  template void relu_forward<T>(T*, const T*, int64_t);                                                            \
  template void relu_backward<T>(T*, const T*, const T*, int64_t);                                                 \
  template void global_avg_pool_forward<T>(T*, const T*, int64_t, int64_t);                                        \
  template void global_avg_pool_backward<T>(T*, const T*, int64_t, int64_t);                                       \
  template void leaky_relu_forward<T>(T*, const T*, int64_t, T);                                                   \
  template void leaky_relu_backward<T>(T*, const T*, const T*, int64_t, T);                                        \
  template void tanh_forward<T>(T*, const T*, int64_t);                                                            \
  template void tanh_backward<T>(T*, const T*, const T*, int64_t);                                                 \
  template void batchnorm_sums<T>(double*, const T*, int64_t, int64_t, int64_t);                                 \
  template void batchnorm_forward<T>(T*, T*, T*, const double*, double, const T*, const T*, const T*, int64_t,     \
                                     int64_t, int64_t);                                                            \
  template void batchnorm_backward_sums<T>(double*, const T*, const T*, const T*, const T*, int64_t, int64_t,      \
                                           int64_t);                                                               \
  template void batchnorm_backward<T>(T*, T*, T*, const double*, const double*, double, const T*, const T*,        \
                                      const T*, const T*, const T*, int64_t, int64_t, int64_t);                    \
  template void batchnorm_inference<T>(T*, const T*, const T*, const T*, const T*, const T*, int64_t, int64_t,     \
                                       int64_t);                                                                   \
  template void mul_forward<T>(T*, const T*, const T*, int64_t);                                                   \
  template void mul_backward<T>(T*, T*, const T*, const T*, const T*, int64_t);
GEN_INSTANTIATE(float)
GEN_INSTANTIATE(double)
#undef GEN_INSTANTIATE

}  // namespace gen::nn
