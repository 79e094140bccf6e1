#include "tensor/conv.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tensor/kernels.h"

namespace gen::nn {

namespace {

// col[C K K, OH OW] from img[C,H,W]: each column holds the K x K x C window under one output
// pixel (zeros where the window hangs over the padding).
template <typename T>
void im2col(T* col, const T* img, const ConvShape& s) {
  const int64_t OH = s.OH(), OW = s.OW(), K = s.K;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t ky = 0; ky < K; ++ky)
      for (int64_t kx = 0; kx < K; ++kx) {
        T* row = col + ((c * K + ky) * K + kx) * OH * OW;
        for (int64_t oy = 0; oy < OH; ++oy) {
          int64_t y = oy * s.stride + ky - s.pad;
          T* dst = row + oy * OW;
          if (y < 0 || y >= s.H) {
            std::fill(dst, dst + OW, T(0));
            continue;
          }
          const T* src = img + (c * s.H + y) * s.W;
          if (s.stride == 1) {
            // x = ox + kx - pad: a shifted copy with zeros at the ends.
            int64_t lo = std::clamp<int64_t>(s.pad - kx, 0, OW), hi = std::min<int64_t>(OW, s.W + s.pad - kx);
            std::fill(dst, dst + lo, T(0));
            if (hi > lo) std::copy(src + lo + kx - s.pad, src + hi + kx - s.pad, dst + lo);
            std::fill(dst + std::max(hi, lo), dst + OW, T(0));
          } else {
            for (int64_t ox = 0; ox < OW; ++ox) {
              int64_t x = ox * s.stride + kx - s.pad;
              dst[ox] = x >= 0 && x < s.W ? src[x] : T(0);
            }
          }
        }
      }
}

// The adjoint of im2col: img[C,H,W] += each column's values back at their pixels.
template <typename T>
void col2im(T* img, const T* col, const ConvShape& s) {
  const int64_t OH = s.OH(), OW = s.OW(), K = s.K;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t ky = 0; ky < K; ++ky)
      for (int64_t kx = 0; kx < K; ++kx) {
        const T* row = col + ((c * K + ky) * K + kx) * OH * OW;
        for (int64_t oy = 0; oy < OH; ++oy) {
          int64_t y = oy * s.stride + ky - s.pad;
          if (y < 0 || y >= s.H) continue;
          T* dst = img + (c * s.H + y) * s.W;
          const T* src = row + oy * OW;
          if (s.stride == 1) {
            // x = ox + kx - pad over the columns that land inside the image.
            int64_t lo = std::clamp<int64_t>(s.pad - kx, 0, OW), hi = std::min<int64_t>(OW, s.W + s.pad - kx);
            T* d = dst + kx - s.pad;
            for (int64_t ox = lo; ox < hi; ++ox) d[ox] += src[ox];
            continue;
          }
          for (int64_t ox = 0; ox < OW; ++ox) {
            int64_t x = ox * s.stride + kx - s.pad;
            if (x >= 0 && x < s.W) dst[x] += src[ox];
          }
        }
      }
}

// A per-thread scratch buffer of at least n values, kept between calls: im2col's columns are
// large (C K K x OH OW), and allocating them per call costs page faults and zeroing.
template <typename T>
T* scratch(size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// A 1x1 convolution with stride 1 and no padding needs no im2col: the image is its own matrix.
bool is_pointwise(const ConvShape& s) { return s.K == 1 && s.stride == 1 && s.pad == 0; }

// Threads for `items` independent pieces of `work` multiply-adds in all: one when the work is
// too small to pay for waking a second thread (tiny test models, single images).
int threads_for(int64_t items, double work) {
  if (omp_in_parallel() || work < double(1 << 20)) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(items, 1)));
}
double conv_work(const ConvShape& s) {
  return static_cast<double>(s.B) * static_cast<double>(s.OC * s.C * s.K * s.K) * static_cast<double>(s.OH() * s.OW());
}

// out[b] (=, or += when accumulate) w[OC, C K K] col(inp[b]), for every image.
template <typename T>
void conv_data_forward(T* out, const T* inp, const T* w, const ConvShape& s, bool accumulate) {
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.K * s.K;
#pragma omp parallel num_threads(threads_for(s.B, conv_work(s)))
  {
    T* col = is_pointwise(s) ? nullptr : scratch<T>(static_cast<size_t>(CKK * P));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < s.B; ++b) {
      const T* image = inp + b * s.C * s.H * s.W;
      if (!is_pointwise(s)) im2col(col, image, s);
      gemm_strided<T>(false, false, s.OC, P, CKK, T(1), w, CKK, is_pointwise(s) ? image : col, P,
                      accumulate ? T(1) : T(0), out + b * s.OC * P, P);
    }
  }
}

// dinp[b] += col2im(w^T dout[b]), for every image.
template <typename T>
void conv_data_backward(T* dinp, const T* dout, const T* w, const ConvShape& s) {
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.K * s.K;
#pragma omp parallel num_threads(threads_for(s.B, conv_work(s)))
  {
    T* col = is_pointwise(s) ? nullptr : scratch<T>(static_cast<size_t>(CKK * P));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < s.B; ++b) {
      T* image = dinp + b * s.C * s.H * s.W;
      if (is_pointwise(s)) {
        gemm_strided<T>(true, false, CKK, P, s.OC, T(1), w, CKK, dout + b * s.OC * P, P, T(1), image, P);
      } else {
        gemm_strided<T>(true, false, CKK, P, s.OC, T(1), w, CKK, dout + b * s.OC * P, P, T(0), col, P);
        col2im(image, col, s);
      }
    }
  }
}

// dw[OC, C K K] += sum over images of dout[b] col(inp[b])^T. Each thread sums its own images
// into its own buffer; the buffers are then added in thread order, so that the result does not
// depend on which thread finishes first (same inputs, same bits).
template <typename T>
void conv_weight_backward(T* dw, const T* dout, const T* inp, const ConvShape& s) {
  const int64_t P = s.OH() * s.OW(), CKK = s.C * s.K * s.K;
  const int threads = threads_for(s.B, conv_work(s));
  std::vector<std::vector<T>> partial(static_cast<size_t>(threads));
#pragma omp parallel num_threads(threads)
  {
    std::vector<T>& mine = partial[static_cast<size_t>(omp_get_thread_num())];
    mine.assign(static_cast<size_t>(s.OC * CKK), T(0));
    T* col = is_pointwise(s) ? nullptr : scratch<T>(static_cast<size_t>(CKK * P));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < s.B; ++b) {
      const T* image = inp + b * s.C * s.H * s.W;
      if (!is_pointwise(s)) im2col(col, image, s);
      gemm_strided<T>(false, true, s.OC, CKK, P, T(1), dout + b * s.OC * P, P, is_pointwise(s) ? image : col,
                      P, T(1), mine.data(), CKK);
    }
  }
  for (const auto& part : partial)
    for (size_t i = 0; i < part.size(); ++i) dw[i] += part[i];
}

// out[b, c, :] += b[c] over P pixels; db[c] += sum of dout[b, c, :].
template <typename T>
void add_bias(T* out, const T* bias, int64_t B, int64_t C, int64_t P) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      T* o = out + (b * C + c) * P;
      for (int64_t p = 0; p < P; ++p) o[p] += bias[c];
    }
}
template <typename T>
void bias_backward(T* db, const T* dout, int64_t B, int64_t C, int64_t P) {
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const T* d = dout + (b * C + c) * P;
      T sum = 0;
      for (int64_t p = 0; p < P; ++p) sum += d[p];
      db[c] += sum;
    }
}

// A transposed convolution is a convolution read backwards: its output is the convolution's
// input. This is the convolution whose input has the transposed one's output shape.
ConvShape transposed(const ConvShape& s) {
  int64_t OH = conv_transpose_size(s.H, s.K, s.stride, s.pad), OW = conv_transpose_size(s.W, s.K, s.stride, s.pad);
  return ConvShape{s.B, s.OC, OH, OW, s.C, s.K, s.stride, s.pad};
}

}  // namespace

template <typename T>
void conv2d_forward(T* out, const T* inp, const T* w, const T* b, const ConvShape& s) {
  conv_data_forward(out, inp, w, s, false);
  if (b) add_bias(out, b, s.B, s.OC, s.OH() * s.OW());
}

template <typename T>
void conv2d_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const ConvShape& s) {
  if (db) bias_backward(db, dout, s.B, s.OC, s.OH() * s.OW());
  if (dw) conv_weight_backward(dw, dout, inp, s);
  if (dinp) conv_data_backward(dinp, dout, w, s);
}

int64_t conv_transpose_size(int64_t H, int64_t K, int64_t stride, int64_t pad) { return (H - 1) * stride - 2 * pad + K; }

template <typename T>
void conv_transpose2d_forward(T* out, const T* inp, const T* w, const T* b, const ConvShape& s) {
  ConvShape c = transposed(s);
  std::fill(out, out + c.B * c.C * c.H * c.W, T(0));
  conv_data_backward(out, inp, w, c);
  if (b) add_bias(out, b, c.B, c.C, c.H * c.W);
}

template <typename T>
void conv_transpose2d_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const ConvShape& s) {
  ConvShape c = transposed(s);
  if (db) bias_backward(db, dout, c.B, c.C, c.H * c.W);
  if (dw) conv_weight_backward(dw, inp, dout, c);  // w[C_in, OC, K, K]: the convolution's [OC', C' K K]
  if (dinp) conv_data_forward(dinp, dout, w, c, true);
}

template <typename T>
void groupnorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t B, int64_t C,
                       int64_t HW, int64_t G) {
  const int64_t CG = C / G, n = CG * HW;
#pragma omp parallel for schedule(static) num_threads(threads_for(B * G, 8.0 * static_cast<double>(B * C * HW)))
  for (int64_t bg = 0; bg < B * G; ++bg) {
    const T* x = inp + bg * n;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]);
    double m = sum / static_cast<double>(n);
    for (int64_t i = 0; i < n; ++i) {
      double d = static_cast<double>(x[i]) - m;
      sq += d * d;
    }
    T r = static_cast<T>(1.0 / std::sqrt(sq / static_cast<double>(n) + 1e-5));
    mean[bg] = static_cast<T>(m);
    rstd[bg] = r;
    const int64_t c0 = (bg % G) * CG;
    for (int64_t c = 0; c < CG; ++c) {
      const T scale = r * w[c0 + c], shift = b[c0 + c] - static_cast<T>(m) * scale;
      const T* xc = x + c * HW;
      T* o = out + bg * n + c * HW;
      for (int64_t p = 0; p < HW; ++p) o[p] = xc[p] * scale + shift;
    }
  }
}

template <typename T>
void groupnorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t B, int64_t C, int64_t HW, int64_t G) {
  const int64_t CG = C / G, n = CG * HW;
  // Per-channel sums for dw and db first (in image order, for the same bits every run).
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t bg = b * G + c / CG;
      const T* x = inp + (b * C + c) * HW;
      const T* d = dout + (b * C + c) * HW;
      T sw = 0, sb = 0;
      for (int64_t p = 0; p < HW; ++p) {
        sw += d[p] * (x[p] - mean[bg]) * rstd[bg];
        sb += d[p];
      }
      if (dw) dw[c] += sw;
      if (db) db[c] += sb;
    }
  if (!dinp) return;
  // dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dout w, per group.
#pragma omp parallel for schedule(static) num_threads(threads_for(B * G, 8.0 * static_cast<double>(B * C * HW)))
  for (int64_t bg = 0; bg < B * G; ++bg) {
    const int64_t c0 = (bg % G) * CG;
    const T* x = inp + bg * n;
    const T* d = dout + bg * n;
    T g_mean = 0, gx_mean = 0;
    for (int64_t c = 0; c < CG; ++c)
      for (int64_t p = 0; p < HW; ++p) {
        T g = d[c * HW + p] * w[c0 + c];
        g_mean += g;
        gx_mean += g * (x[c * HW + p] - mean[bg]) * rstd[bg];
      }
    g_mean /= static_cast<T>(n);
    gx_mean /= static_cast<T>(n);
    T* dx = dinp + bg * n;
    for (int64_t c = 0; c < CG; ++c)
      for (int64_t p = 0; p < HW; ++p) {
        T xhat = (x[c * HW + p] - mean[bg]) * rstd[bg];
        dx[c * HW + p] += rstd[bg] * (d[c * HW + p] * w[c0 + c] - g_mean - xhat * gx_mean);
      }
  }
}

template <typename T>
void silu_forward(T* out, const T* inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = inp[i] / (T(1) + std::exp(-inp[i]));
}

template <typename T>
void silu_backward(T* dinp, const T* inp, const T* dout, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T s = T(1) / (T(1) + std::exp(-inp[i]));
    dinp[i] += dout[i] * s * (T(1) + inp[i] * (T(1) - s));
  }
}

template <typename T>
void upsample2x_forward(T* out, const T* inp, int64_t BC, int64_t H, int64_t W) {
  for (int64_t bc = 0; bc < BC; ++bc)
    for (int64_t y = 0; y < 2 * H; ++y) {
      const T* src = inp + (bc * H + y / 2) * W;
      T* dst = out + (bc * 2 * H + y) * 2 * W;
      for (int64_t x = 0; x < W; ++x) dst[2 * x] = dst[2 * x + 1] = src[x];
    }
}

template <typename T>
void upsample2x_backward(T* dinp, const T* dout, int64_t BC, int64_t H, int64_t W) {
  for (int64_t bc = 0; bc < BC; ++bc)
    for (int64_t y = 0; y < 2 * H; ++y) {
      T* dst = dinp + (bc * H + y / 2) * W;
      const T* src = dout + (bc * 2 * H + y) * 2 * W;
      for (int64_t x = 0; x < W; ++x) dst[x] += src[2 * x] + src[2 * x + 1];
    }
}

template <typename T>
void add_channels_forward(T* out, const T* x, const T* e, int64_t B, int64_t C, int64_t HW) {
  for (int64_t bc = 0; bc < B * C; ++bc)
    for (int64_t p = 0; p < HW; ++p) out[bc * HW + p] = x[bc * HW + p] + e[bc];
}

template <typename T>
void add_channels_backward(T* dx, T* de, const T* dout, int64_t B, int64_t C, int64_t HW) {
  for (int64_t bc = 0; bc < B * C; ++bc) {
    const T* d = dout + bc * HW;
    if (dx)
      for (int64_t p = 0; p < HW; ++p) dx[bc * HW + p] += d[p];
    if (de) {
      T sum = 0;
      for (int64_t p = 0; p < HW; ++p) sum += d[p];
      de[bc] += sum;
    }
  }
}

template <typename T>
void concat_channels_forward(T* out, const T* a, const T* b, int64_t B, int64_t C1, int64_t C2, int64_t HW) {
  for (int64_t i = 0; i < B; ++i) {
    T* o = out + i * (C1 + C2) * HW;
    std::copy(a + i * C1 * HW, a + (i + 1) * C1 * HW, o);
    std::copy(b + i * C2 * HW, b + (i + 1) * C2 * HW, o + C1 * HW);
  }
}

template <typename T>
void concat_channels_backward(T* da, T* db, const T* dout, int64_t B, int64_t C1, int64_t C2, int64_t HW) {
  for (int64_t i = 0; i < B; ++i) {
    const T* d = dout + i * (C1 + C2) * HW;
    if (da)
      for (int64_t k = 0; k < C1 * HW; ++k) da[i * C1 * HW + k] += d[k];
    if (db)
      for (int64_t k = 0; k < C2 * HW; ++k) db[i * C2 * HW + k] += d[C1 * HW + k];
  }
}

template <typename T>
double mse_forward(const T* pred, const T* target, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    double d = static_cast<double>(pred[i]) - static_cast<double>(target[i]);
    sum += d * d;
  }
  return sum / static_cast<double>(n);
}

template <typename T>
void mse_backward(T* dpred, const T* pred, const T* target, int64_t n, T dloss) {
  const T scale = T(2) * dloss / static_cast<T>(n);
  for (int64_t i = 0; i < n; ++i) dpred[i] += scale * (pred[i] - target[i]);
}

template <typename T>
void gather_rows_forward(T* out, const T* table, const uint32_t* ids, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) std::copy_n(table + static_cast<int64_t>(ids[n]) * C, C, out + n * C);
}

template <typename T>
void gather_rows_backward(T* dtable, const T* dout, const uint32_t* ids, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    T* row = dtable + static_cast<int64_t>(ids[n]) * C;
    for (int64_t c = 0; c < C; ++c) row[c] += dout[n * C + c];
  }
}

void timestep_embedding(float* out, const float* t, int64_t N, int64_t D) {
  const int64_t half = D / 2;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < half; ++i) {
      double f = std::exp(-std::log(10000.0) * static_cast<double>(i) / static_cast<double>(half));
      double a = static_cast<double>(t[n]) * f;
      out[n * D + i] = static_cast<float>(std::sin(a));
      out[n * D + half + i] = static_cast<float>(std::cos(a));
    }
}

#define GEN_CONV_INSTANTIATE(T)                                                                                  \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const ConvShape&);                           \
  template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const ConvShape&);                  \
  template void conv_transpose2d_forward<T>(T*, const T*, const T*, const T*, const ConvShape&);                 \
  template void conv_transpose2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const ConvShape&);        \
  template void groupnorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, int64_t,         \
                                     int64_t);                                                                   \
  template void groupnorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t,      \
                                      int64_t, int64_t, int64_t);                                                \
  template void silu_forward<T>(T*, const T*, int64_t);                                                          \
  template void silu_backward<T>(T*, const T*, const T*, int64_t);                                               \
  template void upsample2x_forward<T>(T*, const T*, int64_t, int64_t, int64_t);                                 \
  template void upsample2x_backward<T>(T*, const T*, int64_t, int64_t, int64_t);                                 \
  template void add_channels_forward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t);                      \
  template void add_channels_backward<T>(T*, T*, const T*, int64_t, int64_t, int64_t);                           \
  template void concat_channels_forward<T>(T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t);          \
  template void concat_channels_backward<T>(T*, T*, const T*, int64_t, int64_t, int64_t, int64_t);               \
  template double mse_forward<T>(const T*, const T*, int64_t);                                                   \
  template void mse_backward<T>(T*, const T*, const T*, int64_t, T);                                             \
  template void gather_rows_forward<T>(T*, const T*, const uint32_t*, int64_t, int64_t);                         \
  template void gather_rows_backward<T>(T*, const T*, const uint32_t*, int64_t, int64_t);

GEN_CONV_INSTANTIATE(float)
GEN_CONV_INSTANTIATE(double)

}  // namespace gen::nn
