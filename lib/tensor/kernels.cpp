#include "tensor/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/rng.h"
#include "core/threads.h"
#include "tensor/blas.h"
#include "tensor/fast_math.h"
#include "tensor/sgemm.h"
#include "tensor/vec.h"

namespace gen::nn {

// Our AVX-512 SGEMM (tensor/sgemm.h), on every product: against one-thread OpenBLAS on the
// products of a training step (`make -C bench sgemm`) it is 2-3x faster under
// OPENBLAS_CORETYPE=Haswell and 1.0-1.4x faster than OpenBLAS's own AVX-512 kernels, bar the
// 64 x 32 x 64 attention products, within ~5% either way. Without AVX-512 it calls cblas_sgemm.
template <>
void gemm_strided<float>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                         const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <>
void gemm_strided<double>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  blas::dgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Large products are split by rows of C across the OpenMP threads, each running a one-thread
// BLAS call: one thread pool for the whole program (tools set OpenBLAS to one thread), so that
// BLAS's threads and OpenMP's never fight over the two cores.
template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, const T* B, T beta, T* C) {
  const int64_t lda = ta ? M : K, ldb = tb ? K : N;
  const int parts = threads_for(M, M >= 64 && M * N * K >= (int64_t{1} << 18));
  if (parts <= 1) {
    gemm_strided<T>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
    return;
  }
#pragma omp parallel for num_threads(parts) schedule(static)
  for (int part = 0; part < parts; ++part) {
    // Row ranges rounded to multiples of 16 for the kernels' blocking.
    int64_t begin = (M * part / parts) / 16 * 16, end = part + 1 == parts ? M : (M * (part + 1) / parts) / 16 * 16;
    if (end <= begin) continue;
    const T* a = ta ? A + begin : A + begin * lda;
    gemm_strided<T>(ta, tb, end - begin, N, K, alpha, a, lda, B, ldb, beta, C + begin * N, N);
  }
}

namespace {
// y[OC] = w[OC,C] x[C] (+ y, accumulating): one row (linear_forward's N = 1). Eight rows of w
// at a time share each load of x and keep eight sums in flight. Written once for every vector
// width (tensor/vec.h).
template <int R>
inline void dot_rows(float* y, const float* w, int64_t C, const float* x, bool accumulate) {
  using namespace vec;
  Vec acc[R];
  for (int k = 0; k < R; ++k) acc[k] = Vec{};
  int64_t i = 0;
  for (; i + kFloats <= C; i += kFloats) {
    const Vec xi = load(x + i);
    for (int k = 0; k < R; ++k) acc[k] += load(w + k * C + i) * xi;
  }
  for (int k = 0; k < R; ++k) {
    float s = sum(acc[k]);
    for (int64_t j = i; j < C; ++j) s += w[k * C + j] * x[j];
    y[k] = accumulate ? y[k] + s : s;
  }
}
void gemv_rows(int64_t OC, int64_t C, const float* w, const float* x, bool accumulate, float* y) {
  int64_t o = 0;
  for (; o + 8 <= OC; o += 8) dot_rows<8>(y + o, w + o * C, C, x, accumulate);
  for (; o < OC; ++o) dot_rows<1>(y + o, w + o * C, C, x, accumulate);
}

constexpr int64_t kRowsBlock = 4 * vec::kFloats;  // outputs in a block of pack_rows

// y[S,OC] (+)= x[S,C] against one packed block of kRowsBlock outputs (`valid` of them real):
// each output a chain of multiply-adds down i, four vectors of outputs a row.
template <int S>
void rows_block(float* y, int64_t OC, const float* x, int64_t C, const float* block, int64_t valid, bool accumulate) {
  using namespace vec;
  Vec acc[S][4];
  for (int s = 0; s < S; ++s)
    for (int v = 0; v < 4; ++v) acc[s][v] = Vec{};
  for (int64_t i = 0; i < C; ++i) {
    const float* row = block + i * kRowsBlock;
    const Vec w0 = load(row), w1 = load(row + kFloats), w2 = load(row + 2 * kFloats), w3 = load(row + 3 * kFloats);
    for (int s = 0; s < S; ++s) {
      const Vec xs = broadcast(x[s * C + i]);
      acc[s][0] = fma(xs, w0, acc[s][0]);
      acc[s][1] = fma(xs, w1, acc[s][1]);
      acc[s][2] = fma(xs, w2, acc[s][2]);
      acc[s][3] = fma(xs, w3, acc[s][3]);
    }
  }
  for (int s = 0; s < S; ++s) {
    float sums[kRowsBlock];
    for (int v = 0; v < 4; ++v) store(sums + v * kFloats, acc[s][v]);
    float* out = y + s * OC;
    for (int64_t j = 0; j < valid; ++j) out[j] = accumulate ? out[j] + sums[j] : sums[j];
  }
}

// out = b (+ residual) or residual or nothing in the columns [first, last) of its N rows of OC,
// ahead of a product added into it; the product's beta.
template <typename T>
T linear_start(T* out, const T* b, int64_t N, int64_t OC, const T* residual, int64_t first, int64_t last) {
  for (int64_t n = 0; n < N && (b || residual); ++n) {
    T* o = out + n * OC;
    const T* r = residual ? residual + n * OC : nullptr;
    if (r && b) {
#pragma omp simd
      for (int64_t j = first; j < last; ++j) o[j] = r[j] + b[j];
    } else if (r) {
      if (r != o) std::copy(r + first, r + last, o + first);
    } else {
      std::copy(b + first, b + last, o + first);
    }
  }
  return b || residual ? T(1) : T(0);
}

}  // namespace

template <typename T>
void linear_forward(T* out, const T* inp, const T* w, const T* b, int64_t N, int64_t C, int64_t OC,
                    const T* residual) {
  const T beta = linear_start(out, b, N, OC, residual, 0, OC);
  if (N == 1) {
    if constexpr (std::is_same_v<T, float>) {
      gemv_rows(OC, C, w, inp, beta != 0.0f, out);
    } else {
      for (int64_t o = 0; o < OC; ++o) {
        T sum = 0;
        for (int64_t i = 0; i < C; ++i) sum += w[o * C + i] * inp[i];
        out[o] = beta == T(0) ? sum : sum + out[o];
      }
    }
    return;
  }
  gemm<T>(false, true, N, OC, C, T(1), inp, w, beta, out);
}

int64_t packed_rows_size(int64_t OC, int64_t C) { return (OC + kRowsBlock - 1) / kRowsBlock * kRowsBlock * C; }

void pack_rows(float* packed, const float* w, int64_t OC, int64_t C) {
  for (int64_t o0 = 0; o0 < OC; o0 += kRowsBlock) {
    float* block = packed + o0 * C;
    const int64_t valid = std::min(kRowsBlock, OC - o0);
    for (int64_t i = 0; i < C; ++i) {
      float* row = block + i * kRowsBlock;
      for (int64_t j = 0; j < kRowsBlock; ++j) row[j] = j < valid ? w[(o0 + j) * C + i] : 0.0f;
    }
  }
}

std::pair<int64_t, int64_t> linear_rows_share(float* out, const float* inp, const float* packed, const float* b,
                                              int64_t N, int64_t C, int64_t OC, const float* residual, int part,
                                              int parts) {
  // Rows four at a time (16 sums in registers) with AVX-512's 32 vector registers, two where
  // there are 16 (AVX2, SSE).
  constexpr int kGroup = vec::kFloats >= 16 ? 4 : 2;
  const int64_t blocks = (OC + kRowsBlock - 1) / kRowsBlock;
  const int64_t o_begin = std::min(OC, blocks * part / parts * kRowsBlock);
  const int64_t o_end = std::min(OC, blocks * (part + 1) / parts * kRowsBlock);
  const bool accumulate = linear_start(out, b, N, OC, residual, o_begin, o_end) != 0.0f;
  for (int64_t o0 = o_begin; o0 < o_end; o0 += kRowsBlock) {
    const float* block = packed + o0 * C;
    const int64_t valid = std::min(kRowsBlock, OC - o0);
    int64_t n = 0;
    for (; n + kGroup <= N; n += kGroup)
      rows_block<kGroup>(out + n * OC + o0, OC, inp + n * C, C, block, valid, accumulate);
    for (; n < N; ++n) rows_block<1>(out + n * OC + o0, OC, inp + n * C, C, block, valid, accumulate);
  }
  return {o_begin, o_end};
}

template <typename T>
void linear_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, int64_t N, int64_t C,
                     int64_t OC, bool overwrite) {
  if (dinp) gemm<T>(false, false, N, C, OC, T(1), dout, w, overwrite ? T(0) : T(1), dinp);
  if (dw) gemm<T>(true, false, OC, C, N, T(1), dout, inp, T(1), dw);
  if (db) {
    for (int64_t n = 0; n < N; ++n) {
      const T* row = dout + n * OC;
      for (int64_t o = 0; o < OC; ++o) db[o] += row[o];
    }
  }
}

template <typename T>
void embedding_forward(T* out, const uint32_t* ids, const T* wte, const T* wpe, int64_t B, int64_t Tn, int64_t C) {
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < Tn; ++t) {
      T* o = out + (b * Tn + t) * C;
      const T* token = wte + static_cast<int64_t>(ids[b * Tn + t]) * C;
      const T* position = wpe + t * C;
      for (int64_t i = 0; i < C; ++i) o[i] = token[i] + position[i];
    }
  }
}

template <typename T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const uint32_t* ids, int64_t B, int64_t Tn, int64_t C) {
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < Tn; ++t) {
      const T* d = dout + (b * Tn + t) * C;
      if (dwte) {
        T* token = dwte + static_cast<int64_t>(ids[b * Tn + t]) * C;
        for (int64_t i = 0; i < C; ++i) token[i] += d[i];
      }
      if (dwpe) {
        T* position = dwpe + t * C;
        for (int64_t i = 0; i < C; ++i) position[i] += d[i];
      }
    }
  }
}

// The sums over a row are `omp simd` reductions: in 16 lanes, then the lanes added, an order that
// lets them vectorize (in order, each add waits for the last) and is fixed by the code, not by
// the threads.
template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t N, int64_t C) {
  const T eps = T(1e-5);
  for (int64_t n = 0; n < N; ++n) {
    const T* x = inp + n * C;
    T m = 0;
#pragma omp simd reduction(+ : m)
    for (int64_t i = 0; i < C; ++i) m += x[i];
    m /= static_cast<T>(C);
    T v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t i = 0; i < C; ++i) v += (x[i] - m) * (x[i] - m);
    v /= static_cast<T>(C);
    T s = T(1) / std::sqrt(v + eps);
    T* o = out + n * C;
#pragma omp simd
    for (int64_t i = 0; i < C; ++i) o[i] = (x[i] - m) * s * w[i] + b[i];
    mean[n] = m;
    rstd[n] = s;
  }
}

template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t N, int64_t C, bool overwrite) {
  for (int64_t n = 0; n < N; ++n) {
    const T* x = inp + n * C;
    const T* d = dout + n * C;
    T m = mean[n], s = rstd[n];
    // dnorm = d * w; dx = s (dnorm - mean(dnorm) - norm mean(dnorm * norm))
    T dnorm_mean = 0, dnorm_norm_mean = 0;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
    for (int64_t i = 0; i < C; ++i) {
      T norm = (x[i] - m) * s;
      T dnorm = w[i] * d[i];
      dnorm_mean += dnorm;
      dnorm_norm_mean += dnorm * norm;
    }
    dnorm_mean /= static_cast<T>(C);
    dnorm_norm_mean /= static_cast<T>(C);
    if (db) {
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) db[i] += d[i];
    }
    if (dw) {
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) dw[i] += (x[i] - m) * s * d[i];
    }
    if (!dinp) continue;
    T* di = dinp + n * C;
    if (overwrite) {
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) di[i] = (w[i] * d[i] - dnorm_mean - (x[i] - m) * s * dnorm_norm_mean) * s;
    } else {
#pragma omp simd
      for (int64_t i = 0; i < C; ++i) di[i] += (w[i] * d[i] - dnorm_mean - (x[i] - m) * s * dnorm_norm_mean) * s;
    }
  }
}

namespace {

template <typename T>
constexpr T kGeluScale = static_cast<T>(0.7978845608028654);  // sqrt(2/pi)

template <typename T>
inline T gelu_grad(T x) {
  T th = fast_tanh(kGeluScale<T> * (x + T(0.044715) * x * x * x));
  T sech2 = T(1) - th * th;
  return T(0.5) * (T(1) + th) + T(0.5) * x * sech2 * kGeluScale<T> * (T(1) + T(3 * 0.044715) * x * x);
}

constexpr int64_t kChunk = 4096;  // values per unit of work (16 KiB of floats)

// body(begin, end) over [0, n) in chunks of kChunk, on threads_for_pass(n) threads (the results
// do not depend on the split); on one without entering an OpenMP region at all: libgomp ends
// even a one-thread region with a futex syscall, 4 a token in gsample (one GELU a layer), about
// 9% of its time on this VM.
template <typename Body>
void elementwise(int64_t n, Body&& body) {
  const int threads = threads_for_pass(n);
  if (threads == 1) {
    for (int64_t begin = 0; begin < n; begin += kChunk) body(begin, std::min(n, begin + kChunk));
    return;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t begin = 0; begin < n; begin += kChunk) body(begin, std::min(n, begin + kChunk));
}
}  // namespace

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n) {
  elementwise(n, [=](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      T x = inp[i];
      out[i] = T(0.5) * x * (T(1) + fast_tanh(kGeluScale<T> * (x + T(0.044715) * x * x * x)));
    }
  });
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n, bool overwrite) {
  elementwise(n, [=](int64_t begin, int64_t end) {
    if (overwrite) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) dinp[i] = gelu_grad(inp[i]) * dout[i];
    } else {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i) dinp[i] += gelu_grad(inp[i]) * dout[i];
    }
  });
}

// 24 uniform bits of (key, i) against p.
bool dropout_keeps(uint64_t key, int64_t i, float p) {
  const uint64_t z = mix64(key + (static_cast<uint64_t>(i) + 1) * 0x9E3779B97F4A7C15ull);
  return static_cast<float>(z >> 40) * 0x1p-24f >= p;
}

template <typename T>
void dropout_forward(T* out, const T* x, int64_t n, float p, uint64_t key) {
  const T scale = T(1) / (T(1) - static_cast<T>(p));
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = dropout_keeps(key, i, p) ? x[i] * scale : T(0);
}

template <typename T>
void dropout_backward(T* dx, const T* dout, int64_t n, float p, uint64_t key, bool overwrite) {
  const T scale = T(1) / (T(1) - static_cast<T>(p));
  if (overwrite) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] = dropout_keeps(key, i, p) ? dout[i] * scale : T(0);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] += dropout_keeps(key, i, p) ? dout[i] * scale : T(0);
  }
}

template <typename T>
void residual_forward(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

// Into da, then db: right when da == db (x + x) and the first of them overwrites.
template <typename T>
void residual_backward(T* da, T* db, const T* dout, int64_t n, bool overwrite_a, bool overwrite_b) {
  T* grads[] = {da, db};
  const bool overwrite[] = {overwrite_a, overwrite_b};
  for (int k = 0; k < 2; ++k) {
    T* d = grads[k];
    if (!d) continue;
    if (overwrite[k]) {
      std::copy(dout, dout + n, d);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) d[i] += dout[i];
    }
  }
}

// Attention per (batch, head) as GEMMs on strided views of qkv: S = Q K^T / sqrt(HS), P = causal
// softmax(S) (kept in att), O = P V. q, k and v rows of one head are HS floats, 3C apart.
template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int64_t B, int64_t Tn, int64_t C, int64_t NH, bool causal,
                       float dropout, uint64_t key) {
  const int64_t HS = C / NH;
  const T scale = T(1) / std::sqrt(static_cast<T>(HS));
#pragma omp parallel
  {
  std::vector<T> dropped(dropout > 0 ? static_cast<size_t>(Tn * Tn) : 0);
#pragma omp for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < NH; ++h) {
      const T* q = qkv + b * Tn * 3 * C + h * HS;
      const T* k = q + C;
      const T* v = q + 2 * C;
      T* p = att + (b * NH + h) * Tn * Tn;
      gemm_strided<T>(false, true, Tn, Tn, HS, scale, q, 3 * C, k, 3 * C, T(0), p, Tn);
      for (int64_t t = 0; t < Tn; ++t) {
        T* row = p + t * Tn;
        const int64_t end = causal ? t + 1 : Tn;  // the positions row t attends to
        T maximum = row[0];
#pragma omp simd reduction(max : maximum)
        for (int64_t t2 = 0; t2 < end; ++t2) maximum = std::max(maximum, row[t2]);
        T sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t t2 = 0; t2 < end; ++t2) {
          row[t2] = fast_exp(row[t2] - maximum);
          sum += row[t2];
        }
        T inverse = T(1) / sum;
#pragma omp simd
        for (int64_t t2 = 0; t2 < end; ++t2) row[t2] *= inverse;
        std::fill(row + end, row + Tn, T(0));
      }
      // With dropout the values are mixed by the dropped weights; att keeps the softmax's.
      const T* mix = p;
      if (dropout > 0) {
        dropout_forward(dropped.data(), p, Tn * Tn, dropout, mix64(key + static_cast<uint64_t>(b * NH + h)));
        mix = dropped.data();
      }
      gemm_strided<T>(false, false, Tn, HS, Tn, T(1), mix, Tn, v, 3 * C, T(0), out + b * Tn * C + h * HS, C);
    }
  }
  }
}

// dP = dO V^T; dV += P^T dO; dS = P (dP - rowsum(P dP)) / sqrt(HS); dQ += dS K; dK += dS^T Q.
// With dropout (D the dropped P): dD = dO V^T, dV += D^T dO, dP = dD masked and scaled as D was.
template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int64_t B, int64_t Tn, int64_t C,
                        int64_t NH, bool overwrite, bool causal, float dropout, uint64_t key) {
  const int64_t HS = C / NH;
  const T scale = T(1) / std::sqrt(static_cast<T>(HS));
  const T beta = overwrite ? T(0) : T(1);  // each product covers its head's slice of dq, dk or dv
  // Each (b, h) touches only its own head's slices of dqkv: safe to run in parallel.
#pragma omp parallel
  {
    std::vector<T> dp(static_cast<size_t>(Tn * Tn)), dropped(dropout > 0 ? static_cast<size_t>(Tn * Tn) : 0);
#pragma omp for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < NH; ++h) {
        const T* q = qkv + b * Tn * 3 * C + h * HS;
        const T* k = q + C;
        const T* v = q + 2 * C;
        T* dq = dqkv + b * Tn * 3 * C + h * HS;
        T* dk = dq + C;
        T* dv = dq + 2 * C;
        const T* p = att + (b * NH + h) * Tn * Tn;
        const T* d = dout + b * Tn * C + h * HS;
        gemm_strided<T>(false, true, Tn, Tn, HS, T(1), d, C, v, 3 * C, T(0), dp.data(), Tn);
        if (dropout > 0) {
          const uint64_t head_key = mix64(key + static_cast<uint64_t>(b * NH + h));
          dropout_forward(dropped.data(), p, Tn * Tn, dropout, head_key);
          gemm_strided<T>(true, false, Tn, HS, Tn, T(1), dropped.data(), Tn, d, C, beta, dv, 3 * C);
          dropout_backward(dp.data(), dp.data(), Tn * Tn, dropout, head_key, /*overwrite=*/true);
        } else {
          gemm_strided<T>(true, false, Tn, HS, Tn, T(1), p, Tn, d, C, beta, dv, 3 * C);
        }
        for (int64_t t = 0; t < Tn; ++t) {
          const T* prow = p + t * Tn;
          T* row = dp.data() + t * Tn;
          const int64_t end = causal ? t + 1 : Tn;
          T weighted = 0;
#pragma omp simd reduction(+ : weighted)
          for (int64_t t2 = 0; t2 < end; ++t2) weighted += prow[t2] * row[t2];
#pragma omp simd
          for (int64_t t2 = 0; t2 < end; ++t2) row[t2] = prow[t2] * (row[t2] - weighted) * scale;
          std::fill(row + end, row + Tn, T(0));
        }
        gemm_strided<T>(false, false, Tn, HS, Tn, T(1), dp.data(), Tn, k, 3 * C, beta, dq, 3 * C);
        gemm_strided<T>(true, false, Tn, HS, Tn, T(1), dp.data(), Tn, q, 3 * C, beta, dk, 3 * C);
      }
    }
  }
}

template <typename T>
void softmax_cross_entropy_forward(T* loss, T* probs, const T* logits, const uint32_t* targets, int64_t N,
                                   int64_t V) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const T* x = logits + n * V;
    T* p = probs + n * V;
    T maximum = x[0];
#pragma omp simd reduction(max : maximum)
    for (int64_t v = 0; v < V; ++v) maximum = std::max(maximum, x[v]);
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t v = 0; v < V; ++v) {
      p[v] = fast_exp(x[v] - maximum);
      sum += p[v];
    }
    T inverse = T(1) / sum;
    for (int64_t v = 0; v < V; ++v) p[v] *= inverse;
    // -log p[target], computed from the logits for accuracy: log sum - (x - max)
    loss[n] = std::log(sum) - (x[targets[n]] - maximum);
  }
}

template <typename T>
void softmax_cross_entropy_backward(T* dlogits, const T* probs, const uint32_t* targets, const T* dloss, int64_t N,
                                    int64_t V, bool overwrite) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    T* d = dlogits + n * V;
    const T* p = probs + n * V;
    if (overwrite) {
#pragma omp simd
      for (int64_t v = 0; v < V; ++v) d[v] = p[v] * dloss[n];
    } else {
#pragma omp simd
      for (int64_t v = 0; v < V; ++v) d[v] += p[v] * dloss[n];
    }
    d[targets[n]] -= dloss[n];
  }
}

#define GEN_INSTANTIATE(T)                                                                                          \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, const T*, T, T*);                       \
  template void linear_forward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, const T*);           \
  template void linear_backward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, bool);      \
  template void embedding_forward<T>(T*, const uint32_t*, const T*, const T*, int64_t, int64_t, int64_t);           \
  template void embedding_backward<T>(T*, T*, const T*, const uint32_t*, int64_t, int64_t, int64_t);                \
  template void layernorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t);                   \
  template void layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t,        \
                                      int64_t, bool);                                                               \
  template void gelu_forward<T>(T*, const T*, int64_t);                                                             \
  template void gelu_backward<T>(T*, const T*, const T*, int64_t, bool);                                            \
  template void dropout_forward<T>(T*, const T*, int64_t, float, uint64_t);                                         \
  template void dropout_backward<T>(T*, const T*, int64_t, float, uint64_t, bool);                                  \
  template void residual_forward<T>(T*, const T*, const T*, int64_t);                                               \
  template void residual_backward<T>(T*, T*, const T*, int64_t, bool, bool);                                        \
  template void attention_forward<T>(T*, T*, const T*, int64_t, int64_t, int64_t, int64_t, bool, float, uint64_t);   \
  template void attention_backward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t, bool,     \
                                      bool, float, uint64_t);                                                        \
  template void softmax_cross_entropy_forward<T>(T*, T*, const T*, const uint32_t*, int64_t, int64_t);              \
  template void softmax_cross_entropy_backward<T>(T*, const T*, const uint32_t*, const T*, int64_t, int64_t, bool);

GEN_INSTANTIATE(float)
GEN_INSTANTIATE(double)

}  // namespace gen::nn
