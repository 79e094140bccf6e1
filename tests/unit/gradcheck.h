// Finite-difference gradient checks, shared by the kernel tests (double precision).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

#include "core/rng.h"

namespace gen::test {

using Vec = std::vector<double>;

inline Vec random_vector(size_t n, Rng& rng, double scale = 1.0) {
  Vec v(n);
  for (auto& x : v) x = scale * rng.normal();
  return v;
}

inline double dot(const Vec& a, const Vec& b) { return std::inner_product(a.begin(), a.end(), b.begin(), 0.0); }

// Compares `analytic` with central differences of loss() with respect to every element of x.
inline void check_gradient(const char* what, Vec& x, const Vec& analytic, const std::function<double()>& loss) {
  CAPTURE(what);
  REQUIRE(analytic.size() == x.size());
  const double h = 1e-6;
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    double saved = x[i];
    x[i] = saved + h;
    double plus = loss();
    x[i] = saved - h;
    double minus = loss();
    x[i] = saved;
    double numeric = (plus - minus) / (2 * h);
    double error = std::abs(numeric - analytic[i]) / std::max(1.0, std::abs(numeric) + std::abs(analytic[i]));
    worst = std::max(worst, error);
  }
  CHECK(worst < 1e-7);
}

}  // namespace gen::test
