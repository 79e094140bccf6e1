#include "tensor/kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace gen::nn {

template <>
void gemm<float>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, const float* B,
                 float beta, float* C) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(M),
              static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(ta ? M : K), B,
              static_cast<int>(tb ? K : N), beta, C, static_cast<int>(N));
}

template <>
void gemm<double>(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, const double* B,
                  double beta, double* C) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(M),
              static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(ta ? M : K), B,
              static_cast<int>(tb ? K : N), beta, C, static_cast<int>(N));
}

template <typename T>
void linear_forward(T* out, const T* inp, const T* w, const T* b, int64_t N, int64_t C, int64_t OC) {
  if (b) {
    for (int64_t n = 0; n < N; ++n) std::copy(b, b + OC, out + n * OC);
  }
  gemm<T>(false, true, N, OC, C, T(1), inp, w, b ? T(1) : T(0), out);
}

template <typename T>
void linear_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, int64_t N, int64_t C,
                     int64_t OC) {
  if (dinp) gemm<T>(false, false, N, C, OC, T(1), dout, w, T(1), dinp);
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

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* inp, const T* w, const T* b, int64_t N, int64_t C) {
  const T eps = T(1e-5);
  for (int64_t n = 0; n < N; ++n) {
    const T* x = inp + n * C;
    T m = 0;
    for (int64_t i = 0; i < C; ++i) m += x[i];
    m /= static_cast<T>(C);
    T v = 0;
    for (int64_t i = 0; i < C; ++i) v += (x[i] - m) * (x[i] - m);
    v /= static_cast<T>(C);
    T s = T(1) / std::sqrt(v + eps);
    T* o = out + n * C;
    for (int64_t i = 0; i < C; ++i) o[i] = (x[i] - m) * s * w[i] + b[i];
    mean[n] = m;
    rstd[n] = s;
  }
}

template <typename T>
void layernorm_backward(T* dinp, T* dw, T* db, const T* dout, const T* inp, const T* w, const T* mean,
                        const T* rstd, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    const T* x = inp + n * C;
    const T* d = dout + n * C;
    T m = mean[n], s = rstd[n];
    // dnorm = d * w; dx = s (dnorm - mean(dnorm) - norm mean(dnorm * norm))
    T dnorm_mean = 0, dnorm_norm_mean = 0;
    for (int64_t i = 0; i < C; ++i) {
      T norm = (x[i] - m) * s;
      T dnorm = w[i] * d[i];
      dnorm_mean += dnorm;
      dnorm_norm_mean += dnorm * norm;
    }
    dnorm_mean /= static_cast<T>(C);
    dnorm_norm_mean /= static_cast<T>(C);
    for (int64_t i = 0; i < C; ++i) {
      T norm = (x[i] - m) * s;
      if (db) db[i] += d[i];
      if (dw) dw[i] += norm * d[i];
      if (dinp) dinp[n * C + i] += (w[i] * d[i] - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
  }
}

namespace {
template <typename T>
constexpr T kGeluScale = static_cast<T>(0.7978845608028654);  // sqrt(2/pi)
}

template <typename T>
void gelu_forward(T* out, const T* inp, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T x = inp[i];
    out[i] = T(0.5) * x * (T(1) + std::tanh(kGeluScale<T> * (x + T(0.044715) * x * x * x)));
  }
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T x = inp[i];
    T u = kGeluScale<T> * (x + T(0.044715) * x * x * x);
    T th = std::tanh(u);
    T sech2 = T(1) - th * th;
    T grad = T(0.5) * (T(1) + th) + T(0.5) * x * sech2 * kGeluScale<T> * (T(1) + T(3 * 0.044715) * x * x);
    dinp[i] += grad * dout[i];
  }
}

template <typename T>
void residual_forward(T* out, const T* a, const T* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <typename T>
void residual_backward(T* da, T* db, const T* dout, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (da) da[i] += dout[i];
    if (db) db[i] += dout[i];
  }
}

template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int64_t B, int64_t Tn, int64_t C, int64_t NH) {
  const int64_t HS = C / NH;
  const T scale = T(1) / std::sqrt(static_cast<T>(HS));
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < NH; ++h) {
      for (int64_t t = 0; t < Tn; ++t) {
        const T* q = qkv + (b * Tn + t) * 3 * C + h * HS;
        T* row = att + ((b * NH + h) * Tn + t) * Tn;
        T maximum = -INFINITY;
        for (int64_t t2 = 0; t2 <= t; ++t2) {
          const T* k = qkv + (b * Tn + t2) * 3 * C + C + h * HS;
          T dot = 0;
          for (int64_t i = 0; i < HS; ++i) dot += q[i] * k[i];
          row[t2] = dot * scale;
          maximum = std::max(maximum, row[t2]);
        }
        T sum = 0;
        for (int64_t t2 = 0; t2 <= t; ++t2) {
          row[t2] = std::exp(row[t2] - maximum);
          sum += row[t2];
        }
        T inverse = T(1) / sum;
        for (int64_t t2 = 0; t2 <= t; ++t2) row[t2] *= inverse;
        for (int64_t t2 = t + 1; t2 < Tn; ++t2) row[t2] = 0;
        T* o = out + (b * Tn + t) * C + h * HS;
        std::fill(o, o + HS, T(0));
        for (int64_t t2 = 0; t2 <= t; ++t2) {
          const T* v = qkv + (b * Tn + t2) * 3 * C + 2 * C + h * HS;
          for (int64_t i = 0; i < HS; ++i) o[i] += row[t2] * v[i];
        }
      }
    }
  }
}

template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int64_t B, int64_t Tn, int64_t C,
                        int64_t NH) {
  const int64_t HS = C / NH;
  const T scale = T(1) / std::sqrt(static_cast<T>(HS));
  // Each (b, h) touches only its own head's slices of dqkv: safe to run in parallel.
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < NH; ++h) {
      std::vector<T> datt(static_cast<size_t>(Tn));
      for (int64_t t = 0; t < Tn; ++t) {
        const T* row = att + ((b * NH + h) * Tn + t) * Tn;
        const T* d = dout + (b * Tn + t) * C + h * HS;
        // out = att v: datt[t2] = d . v[t2]; dv[t2] += att[t2] d
        T weighted = 0;
        for (int64_t t2 = 0; t2 <= t; ++t2) {
          const T* v = qkv + (b * Tn + t2) * 3 * C + 2 * C + h * HS;
          T* dv = dqkv + (b * Tn + t2) * 3 * C + 2 * C + h * HS;
          T dot = 0;
          for (int64_t i = 0; i < HS; ++i) {
            dot += d[i] * v[i];
            dv[i] += row[t2] * d[i];
          }
          datt[static_cast<size_t>(t2)] = dot;
          weighted += row[t2] * dot;
        }
        // softmax: dpre[t2] = att[t2] (datt[t2] - sum att datt); pre = scale q . k
        const T* q = qkv + (b * Tn + t) * 3 * C + h * HS;
        T* dq = dqkv + (b * Tn + t) * 3 * C + h * HS;
        for (int64_t t2 = 0; t2 <= t; ++t2) {
          T dpre = row[t2] * (datt[static_cast<size_t>(t2)] - weighted) * scale;
          const T* k = qkv + (b * Tn + t2) * 3 * C + C + h * HS;
          T* dk = dqkv + (b * Tn + t2) * 3 * C + C + h * HS;
          for (int64_t i = 0; i < HS; ++i) {
            dq[i] += dpre * k[i];
            dk[i] += dpre * q[i];
          }
        }
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
    T maximum = *std::max_element(x, x + V);
    T sum = 0;
    for (int64_t v = 0; v < V; ++v) {
      p[v] = std::exp(x[v] - maximum);
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
                                    int64_t V) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    T* d = dlogits + n * V;
    const T* p = probs + n * V;
    for (int64_t v = 0; v < V; ++v) d[v] += p[v] * dloss[n];
    d[targets[n]] -= dloss[n];
  }
}

#define GEN_INSTANTIATE(T)                                                                                         \
  template void linear_forward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t);                    \
  template void linear_backward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t, int64_t);           \
  template void embedding_forward<T>(T*, const uint32_t*, const T*, const T*, int64_t, int64_t, int64_t);          \
  template void embedding_backward<T>(T*, T*, const T*, const uint32_t*, int64_t, int64_t, int64_t);               \
  template void layernorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, int64_t);                  \
  template void layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, int64_t,       \
                                      int64_t);                                                                    \
  template void gelu_forward<T>(T*, const T*, int64_t);                                                            \
  template void gelu_backward<T>(T*, const T*, const T*, int64_t);                                                 \
  template void residual_forward<T>(T*, const T*, const T*, int64_t);                                              \
  template void residual_backward<T>(T*, T*, const T*, int64_t);                                                   \
  template void attention_forward<T>(T*, T*, const T*, int64_t, int64_t, int64_t, int64_t);                        \
  template void attention_backward<T>(T*, const T*, const T*, const T*, int64_t, int64_t, int64_t, int64_t);       \
  template void softmax_cross_entropy_forward<T>(T*, T*, const T*, const uint32_t*, int64_t, int64_t);             \
  template void softmax_cross_entropy_backward<T>(T*, const T*, const uint32_t*, const T*, int64_t, int64_t);

GEN_INSTANTIATE(float)
GEN_INSTANTIATE(double)

}  // namespace gen::nn
