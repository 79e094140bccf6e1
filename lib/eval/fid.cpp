#include "eval/fid.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "tensor/blas.h"
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
  if (n > (int64_t{1} << 15)) throw std::invalid_argument("symmetric_eigen: over 32768 dimensions");
  values.assign(static_cast<size_t>(n), 0.0);
  if (n == 0) {
    if (vectors) vectors->clear();
    return;
  }
  // LAPACK's divide and conquer (dsyevd, OpenBLAS loaded on first use: tensor/blas.h). a is symmetric, so its
  // row-major bytes are its column-major ones; the lower triangle is read.
  const char jobz = vectors ? 'V' : 'N', uplo = 'L';
  const int N = static_cast<int>(n);
  int iwork_size = 0;
  double work_size = 0;
  int info = blas::dsyevd(jobz, uplo, N, a.data(), N, values.data(), &work_size, -1, &iwork_size, -1);
  if (info != 0) throw std::runtime_error(fmt::format("symmetric_eigen: dsyevd's workspace query failed ({})", info));
  const int lwork = static_cast<int>(work_size), liwork = iwork_size;
  std::vector<double> work(static_cast<size_t>(std::max(lwork, 1)));
  std::vector<int> iwork(static_cast<size_t>(std::max(liwork, 1)));
  info = blas::dsyevd(jobz, uplo, N, a.data(), N, values.data(), work.data(), lwork, iwork.data(), liwork);
  if (info != 0) throw std::runtime_error(fmt::format("symmetric_eigen: dsyevd did not converge ({})", info));
  if (vectors) {
    // Column-major out: eigenvector k is a[k n .. k n + n); vectors holds it as column k.
    vectors->resize(static_cast<size_t>(n * n));
    for (int64_t r = 0; r < n; ++r)
      for (int64_t k = 0; k < n; ++k) (*vectors)[static_cast<size_t>(r * n + k)] = a[static_cast<size_t>(k * n + r)];
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
