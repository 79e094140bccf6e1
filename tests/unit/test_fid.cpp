// The Fréchet distance (eval/fid.h) on cases with known answers, and the symmetric eigensolver (LAPACK).
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "eval/fid.h"

using namespace gen;

namespace {

// n samples of d dimensions: x_j = mean_j + scale_j z, z ~ N(0, 1).
std::vector<float> gaussian_samples(int64_t n, int64_t d, Rng& rng, const std::vector<double>& mean,
                                    const std::vector<double>& scale) {
  std::vector<float> x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j)
      x[static_cast<size_t>(i * d + j)] =
          static_cast<float>(mean[static_cast<size_t>(j)] + scale[static_cast<size_t>(j)] * rng.normal());
  return x;
}

Gaussian make(std::vector<double> mean, std::vector<double> cov) {
  Gaussian g;
  g.dim = static_cast<int64_t>(mean.size());
  g.count = 2;
  g.mean = std::move(mean);
  g.cov = std::move(cov);
  return g;
}

}  // namespace

TEST_CASE("symmetric_eigen: eigenvalues and vectors that rebuild the matrix") {
  std::vector<double> values, vectors;
  symmetric_eigen({2, 1, 1, 2}, 2, values, &vectors);
  CHECK(values[0] == doctest::Approx(1));
  CHECK(values[1] == doctest::Approx(3));

  // A random symmetric 40 x 40: A = V diag(l) V^T and V^T V = I.
  const int64_t n = 40;
  Rng rng(31);
  std::vector<double> a(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) a[static_cast<size_t>(i * n + j)] = a[static_cast<size_t>(j * n + i)] = rng.normal();
  symmetric_eigen(a, n, values, &vectors);
  double worst = 0, worst_orth = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double rebuilt = 0, gram = 0;
      for (int64_t k = 0; k < n; ++k) {
        rebuilt += vectors[static_cast<size_t>(i * n + k)] * values[static_cast<size_t>(k)] *
                   vectors[static_cast<size_t>(j * n + k)];
        gram += vectors[static_cast<size_t>(k * n + i)] * vectors[static_cast<size_t>(k * n + j)];
      }
      worst = std::max(worst, std::abs(rebuilt - a[static_cast<size_t>(i * n + j)]));
      worst_orth = std::max(worst_orth, std::abs(gram - (i == j ? 1.0 : 0.0)));
    }
  CHECK(worst < 1e-11);
  CHECK(worst_orth < 1e-12);
  for (int64_t i = 1; i < n; ++i) CHECK(values[static_cast<size_t>(i - 1)] <= values[static_cast<size_t>(i)]);
}

TEST_CASE("frechet_distance: closed forms") {
  // Identical Gaussians: 0.
  Gaussian a = make({1, 2}, {2, 0.5, 0.5, 1});
  CHECK(frechet_distance(a, a) == doctest::Approx(0).epsilon(1e-9));
  // Same covariance, shifted mean: ||d||^2.
  Gaussian b = make({4, -2}, {2, 0.5, 0.5, 1});
  CHECK(frechet_distance(a, b) == doctest::Approx(9 + 16));
  // Diagonal covariances: ||d||^2 + sum (sqrt(s1) - sqrt(s2))^2.
  Gaussian c = make({0, 0, 0}, {4, 0, 0, 0, 9, 0, 0, 0, 1});
  Gaussian d = make({1, 0, 0}, {1, 0, 0, 0, 1, 0, 0, 0, 16});
  CHECK(frechet_distance(c, d) == doctest::Approx(1 + 1 + 4 + 9));
  // Two 2 x 2 covariances that do not commute: tr (S1 S2)^(1/2) = sqrt(tr P + 2 sqrt(det P))
  // for P = S1 S2 (its eigenvalues l1, l2: (sqrt l1 + sqrt l2)^2 = l1 + l2 + 2 sqrt(l1 l2)).
  std::vector<double> s1 = {2, 0.5, 0.5, 1}, s2 = {1, -0.3, -0.3, 3};
  double p00 = s1[0] * s2[0] + s1[1] * s2[2], p01 = s1[0] * s2[1] + s1[1] * s2[3];
  double p10 = s1[2] * s2[0] + s1[3] * s2[2], p11 = s1[2] * s2[1] + s1[3] * s2[3];
  double root = std::sqrt(p00 + p11 + 2 * std::sqrt(p00 * p11 - p01 * p10));
  CHECK(trace_sqrt_product(s1, s2, 2) == doctest::Approx(root).epsilon(1e-12));
  CHECK(frechet_distance(make({0, 0}, s1), make({0, 0}, s2)) == doctest::Approx(2 + 1 + 1 + 3 - 2 * root));
  // Symmetric in its arguments.
  CHECK(frechet_distance(make({0, 0}, s2), make({0, 0}, s1)) == doctest::Approx(2 + 1 + 1 + 3 - 2 * root));
  // A singular covariance (fewer samples than dimensions) is fine: tr of a rank-1 pair.
  Gaussian e = make({0, 0}, {1, 1, 1, 1}), f = make({0, 0}, {0, 0, 0, 0});
  CHECK(frechet_distance(e, f) == doctest::Approx(2));
}

TEST_CASE("fit_gaussian and FID of sampled sets") {
  Rng rng(32);
  const int64_t d = 16, n = 20000;
  std::vector<double> zero(static_cast<size_t>(d), 0.0), one(static_cast<size_t>(d), 1.0), two(static_cast<size_t>(d), 2.0);
  std::vector<float> x = gaussian_samples(n, d, rng, zero, one);
  Gaussian g = fit_gaussian(x.data(), n, d);
  CHECK(g.count == n);
  for (int64_t j = 0; j < d; ++j) {
    CHECK(std::abs(g.mean[static_cast<size_t>(j)]) < 0.05);
    CHECK(g.cov[static_cast<size_t>(j * d + j)] == doctest::Approx(1).epsilon(0.05));
  }
  // The same set against itself: 0.
  CHECK(frechet_distance(g, g) < 1e-9);
  // Two samples of one distribution: small (the bias of finite samples, about d^2 / n).
  std::vector<float> y = gaussian_samples(n, d, rng, zero, one);
  CHECK(frechet_distance(g, fit_gaussian(y.data(), n, d)) < 0.1);
  // Means 1 apart in every dimension: about d.
  std::vector<double> shifted(static_cast<size_t>(d), 1.0);
  std::vector<float> z = gaussian_samples(n, d, rng, shifted, one);
  CHECK(frechet_distance(g, fit_gaussian(z.data(), n, d)) == doctest::Approx(static_cast<double>(d)).epsilon(0.05));
  // Twice the spread: sum (1 - 2)^2 = d.
  std::vector<float> w = gaussian_samples(n, d, rng, zero, two);
  CHECK(frechet_distance(g, fit_gaussian(w.data(), n, d)) == doctest::Approx(static_cast<double>(d)).epsilon(0.05));
  // The covariance is exact for a tiny set: (x - mean)^2 / (n - 1).
  float tiny[] = {1, 10, 3, 14};  // two vectors of two
  Gaussian t = fit_gaussian(tiny, 2, 2);
  CHECK(t.mean[0] == doctest::Approx(2));
  CHECK(t.cov[0] == doctest::Approx(2));   // ((1-2)^2 + (3-2)^2) / 1
  CHECK(t.cov[1] == doctest::Approx(4));   // (-1)(-2) + (1)(2)
  CHECK(t.cov[3] == doctest::Approx(8));
}
