// Finite-difference gradient checks, shared by the kernel tests (double precision).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

#include <string>

#include "core/rng.h"
#include "tensor/tensor.h"

namespace gen::test {

using Vec = std::vector<double>;

inline Vec random_vector(size_t n, Rng& rng, double scale = 1.0) {
  Vec v(n);
  for (auto& x : v) x = scale * rng.normal();
  return v;
}

inline double dot(const Vec& a, const Vec& b) { return std::inner_product(a.begin(), a.end(), b.begin(), 0.0); }

// Compares `analytic` with central differences of loss() with respect to every element of x, a
// step h either side. (Where loss() is linear in x, as a convolution's is in its input and in
// its weights, the differences are exact but for rounding, which a larger step divides.)
inline void check_gradient(const char* what, Vec& x, const Vec& analytic, const std::function<double()>& loss,
                           double h = 1e-6) {
  CAPTURE(what);
  REQUIRE(analytic.size() == x.size());
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

namespace gen::test {

// A model's gradients against central differences in float, weight tensor by weight tensor:
// loss_at(true) runs forward and backward (the tape's gradients land in params.grads()),
// loss_at(false) only the loss. Per tensor, ||numeric - analytic|| / ||numeric|| must stay
// under tolerance: float differences are noisy element by element, a missing or wrong path is
// not. Tensors named in nonzero must get a gradient at all (no silent dead path).
inline void check_model_gradient(Parameters& params, const std::function<double(bool)>& loss_at, float h = 1e-2f,
                                 double tolerance = 0.03, const std::vector<std::string>& nonzero = {}) {
  params.zero_grads();
  loss_at(true);
  std::vector<float> analytic(params.grads(), params.grads() + params.size());
  for (const auto& view : params.views()) {
    CAPTURE(view.name);
    double diff = 0, norm = 0;
    for (size_t i = view.offset; i < view.offset + view.size; ++i) {
      float& w = params.values()[i];
      const float saved = w;
      w = saved + h;
      const double plus = loss_at(false);
      w = saved - h;
      const double minus = loss_at(false);
      w = saved;
      const double numeric = (plus - minus) / (2.0 * h);
      diff += (numeric - analytic[i]) * (numeric - analytic[i]);
      norm += numeric * numeric;
    }
    if (std::find(nonzero.begin(), nonzero.end(), view.name) != nonzero.end()) CHECK(norm > 0);
    CHECK(std::sqrt(diff / std::max(norm, 1e-30)) < tolerance);
  }
}

}  // namespace gen::test
