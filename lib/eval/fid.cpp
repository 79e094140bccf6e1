#include "eval/fid.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "tensor/kernels.h"

namespace gen {

Gaussian fit_gaussian(const float* x, int64_t n, int64_t d) {
  if (n < 2 || d < 1) throw std::invalid_argument("fit_gaussian: needs at least 2 vectors of 1 or more values");
  Gaussian g;
  g.dim = d;
  g.count = n;
  g.mean.assign(static_cast<size_t>(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) g.mean[static_cast<size_t>(j)] += x[i * d + j];
  for (auto& m : g.mean) m /= static_cast<double>(n);
  // cov = X_c^T X_c / (n - 1), the centred rows taken a block at a time through a GEMM.
  g.cov.assign(static_cast<size_t>(d * d), 0.0);
  const int64_t block = 1024;
  std::vector<double> centred(static_cast<size_t>(std::min(block, n) * d));
  for (int64_t start = 0; start < n; start += block) {
    const int64_t rows = std::min(block, n - start);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < d; ++j)
        centred[static_cast<size_t>(i * d + j)] = x[(start + i) * d + j] - g.mean[static_cast<size_t>(j)];
    nn::gemm<double>(true, false, d, d, rows, 1.0, centred.data(), centred.data(), 1.0, g.cov.data());
  }
  const double scale = 1.0 / static_cast<double>(n - 1);
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      // Symmetric to the last bit, whatever order the GEMM summed in.
      double v = 0.5 * (g.cov[static_cast<size_t>(i * d + j)] + g.cov[static_cast<size_t>(j * d + i)]) * scale;
      g.cov[static_cast<size_t>(i * d + j)] = g.cov[static_cast<size_t>(j * d + i)] = v;
    }
  return g;
}

void symmetric_eigen(std::vector<double> a, int64_t n, std::vector<double>& values, std::vector<double>* vectors) {
  if (static_cast<int64_t>(a.size()) != n * n) throw std::invalid_argument("symmetric_eigen: a is not n x n");
  auto A = [&](int64_t i, int64_t j) -> double& { return a[static_cast<size_t>(i * n + j)]; };
  std::vector<double> v;
  if (vectors) {
    v.assign(static_cast<size_t>(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i * n + i)] = 1.0;
  }
  double total = 0;
  for (double x : a) total += x * x;
  // Cyclic Jacobi (Golub and Van Loan, "Matrix Computations", 8.5.3): rotate every off-diagonal
  // pair (p, q) to zero, sweep after sweep, until what is off the diagonal is rounding noise.
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) off += 2 * A(p, q) * A(p, q);
    if (off <= 1e-30 * total || off == 0) break;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        const double apq = A(p, q);
        if (apq == 0) continue;
        const double tau = (A(q, q) - A(p, p)) / (2 * apq);
        const double t = (tau >= 0 ? 1.0 : -1.0) / (std::abs(tau) + std::sqrt(1 + tau * tau));
        const double c = 1 / std::sqrt(1 + t * t), s = t * c;
        // A <- J^T A J with J the rotation in the (p, q) plane: columns p and q, then rows.
        for (int64_t k = 0; k < n; ++k) {
          const double akp = A(k, p), akq = A(k, q);
          A(k, p) = c * akp - s * akq;
          A(k, q) = s * akp + c * akq;
        }
        for (int64_t k = 0; k < n; ++k) {
          const double apk = A(p, k), aqk = A(q, k);
          A(p, k) = c * apk - s * aqk;
          A(q, k) = s * apk + c * aqk;
        }
        A(p, q) = A(q, p) = 0;
        if (vectors)
          for (int64_t k = 0; k < n; ++k) {
            double& vkp = v[static_cast<size_t>(k * n + p)];
            double& vkq = v[static_cast<size_t>(k * n + q)];
            const double x = vkp, y = vkq;
            vkp = c * x - s * y;
            vkq = s * x + c * y;
          }
      }
  }
  // Ascending eigenvalues, the vectors in the same order.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return A(i, i) < A(j, j); });
  values.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[static_cast<size_t>(i)] = A(order[static_cast<size_t>(i)], order[static_cast<size_t>(i)]);
  if (vectors) {
    vectors->assign(static_cast<size_t>(n * n), 0.0);
    for (int64_t k = 0; k < n; ++k)
      for (int64_t i = 0; i < n; ++i)
        (*vectors)[static_cast<size_t>(k * n + i)] = v[static_cast<size_t>(k * n + order[static_cast<size_t>(i)])];
  }
}

double trace_sqrt_product(const std::vector<double>& a, const std::vector<double>& b, int64_t n) {
  // A^(1/2) = V diag(sqrt(max(l, 0))) V^T.
  std::vector<double> values, vectors;
  symmetric_eigen(a, n, values, &vectors);
  std::vector<double> scaled(static_cast<size_t>(n * n)), root(static_cast<size_t>(n * n));
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < n; ++i)
      scaled[static_cast<size_t>(k * n + i)] =
          vectors[static_cast<size_t>(k * n + i)] * std::sqrt(std::max(values[static_cast<size_t>(i)], 0.0));
  nn::gemm<double>(false, true, n, n, n, 1.0, scaled.data(), vectors.data(), 0.0, root.data());
  // M = A^(1/2) B A^(1/2), symmetric positive semi-definite; tr M^(1/2) = sum of sqrt(eigenvalues).
  std::vector<double> tmp(static_cast<size_t>(n * n)), m(static_cast<size_t>(n * n));
  nn::gemm<double>(false, false, n, n, n, 1.0, root.data(), b.data(), 0.0, tmp.data());
  nn::gemm<double>(false, false, n, n, n, 1.0, tmp.data(), root.data(), 0.0, m.data());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < i; ++j) {
      double s = 0.5 * (m[static_cast<size_t>(i * n + j)] + m[static_cast<size_t>(j * n + i)]);
      m[static_cast<size_t>(i * n + j)] = m[static_cast<size_t>(j * n + i)] = s;
    }
  symmetric_eigen(std::move(m), n, values, nullptr);
  double trace = 0;
  for (double l : values) trace += std::sqrt(std::max(l, 0.0));
  return trace;
}

double frechet_distance(const Gaussian& a, const Gaussian& b) {
  if (a.dim != b.dim) throw std::invalid_argument("frechet_distance: the Gaussians differ in dimension");
  const int64_t d = a.dim;
  double distance = 0;
  for (int64_t i = 0; i < d; ++i) {
    const double diff = a.mean[static_cast<size_t>(i)] - b.mean[static_cast<size_t>(i)];
    distance += diff * diff;
  }
  for (int64_t i = 0; i < d; ++i)
    distance += a.cov[static_cast<size_t>(i * d + i)] + b.cov[static_cast<size_t>(i * d + i)];
  distance -= 2 * trace_sqrt_product(a.cov, b.cov, d);
  return std::max(distance, 0.0);
}

}  // namespace gen
