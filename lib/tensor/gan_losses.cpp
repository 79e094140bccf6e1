#include "tensor/gan_losses.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace gen::nn {

namespace {

// Values below which a kernel stays on one thread.
constexpr int64_t kParallelValues = int64_t{1} << 18;

}  // namespace

template <typename T>
double gan_loss_forward(const T* logits, const float* signs, int64_t n, GanLoss kind) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double u = static_cast<double>(signs[i]) * static_cast<double>(logits[i]);
    switch (kind) {
      case GanLoss::bce: sum += std::max(-u, 0.0) + std::log1p(std::exp(-std::abs(u))); break;
      case GanLoss::hinge: sum += std::max(1.0 - u, 0.0); break;
      case GanLoss::linear: sum -= u; break;
    }
  }
  return sum / static_cast<double>(n);
}

template <typename T>
void gan_loss_backward(T* dlogits, const T* logits, const float* signs, int64_t n, GanLoss kind, T weight) {
  if (!dlogits) return;
  const T scale = weight / static_cast<T>(n);
  for (int64_t i = 0; i < n; ++i) {
    const T s = static_cast<T>(signs[i]), u = s * logits[i];
    T df = 0;  // f'(u)
    switch (kind) {
      case GanLoss::bce: {  // -sigmoid(-u), without overflow either side
        const T e = std::exp(-std::abs(u));
        df = u >= T(0) ? -e / (T(1) + e) : -T(1) / (T(1) + e);
        break;
      }
      case GanLoss::hinge: df = u < T(1) ? T(-1) : T(0); break;
      case GanLoss::linear: df = T(-1); break;
    }
    dlogits[i] += scale * s * df;
  }
}

namespace {

// ||g_n||_2 of row n of g[N,D], in double.
template <typename T>
double row_norm(const T* g, int64_t n, int64_t D) {
  const T* row = g + n * D;
  double sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t k = 0; k < D; ++k) sq += static_cast<double>(row[k]) * static_cast<double>(row[k]);
  return std::sqrt(sq);
}

}  // namespace

template <typename T>
double gradient_penalty_forward(const T* g, int64_t N, int64_t D) {
  // The rows' norms in parallel, their sum in row order: the same bits at any thread count.
  std::vector<double> norms(static_cast<size_t>(N));
#pragma omp parallel for schedule(static) if (N * D > kParallelValues)
  for (int64_t n = 0; n < N; ++n) norms[static_cast<size_t>(n)] = row_norm(g, n, D);
  double sum = 0;
  for (double norm : norms) sum += (norm - 1.0) * (norm - 1.0);
  return sum / static_cast<double>(N);
}

template <typename T>
void gradient_penalty_backward(T* dg, const T* g, int64_t N, int64_t D, T weight) {
  if (!dg) return;
#pragma omp parallel for schedule(static) if (N * D > kParallelValues)
  for (int64_t n = 0; n < N; ++n) {
    const double norm = row_norm(g, n, D);
    if (norm == 0) continue;  // no direction to move along: the subgradient 0, as PyTorch's norm
    const T scale = static_cast<T>(static_cast<double>(weight) * 2.0 * (norm - 1.0) / norm / static_cast<double>(N));
    const T* row = g + n * D;
    T* d = dg + n * D;
#pragma omp simd
    for (int64_t k = 0; k < D; ++k) d[k] += scale * row[k];
  }
}

#define GEN_INSTANTIATE(T)                                                                 \
  template double gan_loss_forward<T>(const T*, const float*, int64_t, GanLoss);           \
  template void gan_loss_backward<T>(T*, const T*, const float*, int64_t, GanLoss, T);     \
  template double gradient_penalty_forward<T>(const T*, int64_t, int64_t);                 \
  template void gradient_penalty_backward<T>(T*, const T*, int64_t, int64_t, T);
GEN_INSTANTIATE(float)
GEN_INSTANTIATE(double)
#undef GEN_INSTANTIATE

}  // namespace gen::nn
