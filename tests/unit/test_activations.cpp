// Finite-difference gradient checks for tensor/activations.h (ReLU, global average pooling), in
// double precision as test_conv.cpp: L = sum(out * r), dout = r.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "gradcheck.h"
#include "tensor/activations.h"

using namespace gen;
using namespace gen::test;

TEST_CASE("relu: max(x, 0); gradient passes where x > 0") {
  Vec x = {-2.0, -0.5, 0.0, 0.25, 3.0}, out(5);
  nn::relu_forward(out.data(), x.data(), 5);
  CHECK(out == Vec{0.0, 0.0, 0.0, 0.25, 3.0});
  Vec dx(5, 1.0), dout = {1, 2, 3, 4, 5};
  nn::relu_backward(dx.data(), x.data(), dout.data(), 5);
  CHECK(dx == Vec{1, 1, 1, 5, 6});  // accumulates; nothing flows where x <= 0

  Rng rng(21);
  const size_t n = 257;
  Vec inp = random_vector(n, rng), r = random_vector(n, rng), y(n);
  // Keep the inputs away from the kink, where a central difference straddles two slopes.
  for (auto& v : inp)
    if (std::abs(v) < 1e-3) v = 0.5;
  auto loss = [&] {
    nn::relu_forward(y.data(), inp.data(), static_cast<int64_t>(n));
    return dot(y, r);
  };
  Vec dinp(n);
  nn::relu_backward(dinp.data(), inp.data(), r.data(), static_cast<int64_t>(n));
  check_gradient("relu input", inp, dinp, loss);
  nn::relu_backward<double>(nullptr, inp.data(), r.data(), static_cast<int64_t>(n));  // no gradient wanted: no-op
}

TEST_CASE("global_avg_pool: the mean of each plane; gradient") {
  Vec x = {1, 2, 3, 4, 10, 20, 30, 40}, out(2);
  nn::global_avg_pool_forward(out.data(), x.data(), 2, 4);
  CHECK(out[0] == doctest::Approx(2.5));
  CHECK(out[1] == doctest::Approx(25));

  Rng rng(22);
  const int64_t BC = 6, HW = 7 * 5;
  Vec inp = random_vector(static_cast<size_t>(BC * HW), rng), r = random_vector(static_cast<size_t>(BC), rng),
      y(static_cast<size_t>(BC));
  auto loss = [&] {
    nn::global_avg_pool_forward(y.data(), inp.data(), BC, HW);
    return dot(y, r);
  };
  Vec dinp(inp.size());
  nn::global_avg_pool_backward(dinp.data(), r.data(), BC, HW);
  check_gradient("global average pool input", inp, dinp, loss);
}
