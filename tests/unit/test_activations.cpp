// Finite-difference gradient checks for tensor/activations.h (ReLU, global average pooling, and
// the GAN's layers: leaky ReLU, tanh, batch normalization, the GAN losses, the elementwise
// product, the gradient penalty), in double precision as test_conv.cpp: L = sum(out * r),
// dout = r (the losses: L itself). Each also checks a few forward values worked out by hand.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "gradcheck.h"
#include "tensor/activations.h"
#include "tensor/gan_losses.h"

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

TEST_CASE("leaky_relu: x or slope x; gradient") {
  Vec x = {-2.0, -0.5, 0.0, 0.25, 3.0}, out(5);
  nn::leaky_relu_forward(out.data(), x.data(), 5, 0.2);
  const Vec expected = {-0.4, -0.1, 0.0, 0.25, 3.0};
  for (size_t i = 0; i < 5; ++i) CHECK(out[i] == doctest::Approx(expected[i]));
  Vec dx(5, 1.0), dout = {1, 2, 3, 4, 5};
  nn::leaky_relu_backward(dx.data(), x.data(), dout.data(), 5, 0.2);
  const Vec expected_dx = {1.2, 1.4, 1.6, 5, 6};  // accumulates; slope dout where x <= 0
  for (size_t i = 0; i < 5; ++i) CHECK(dx[i] == doctest::Approx(expected_dx[i]));

  Rng rng(23);
  const size_t n = 257;
  Vec inp = random_vector(n, rng), r = random_vector(n, rng), y(n);
  for (auto& v : inp)
    if (std::abs(v) < 1e-3) v = -0.5;  // away from the kink
  auto loss = [&] {
    nn::leaky_relu_forward(y.data(), inp.data(), static_cast<int64_t>(n), 0.2);
    return dot(y, r);
  };
  Vec dinp(n);
  nn::leaky_relu_backward(dinp.data(), inp.data(), r.data(), static_cast<int64_t>(n), 0.2);
  check_gradient("leaky relu input", inp, dinp, loss);
  nn::leaky_relu_backward<double>(nullptr, inp.data(), r.data(), static_cast<int64_t>(n), 0.2);  // no-op
}

TEST_CASE("tanh: values; gradient from the output") {
  const double a = std::log(3.0) / 2;  // tanh(a) = (3 - 1) / (3 + 1)
  Vec x = {-a, 0.0, a}, out(3);
  nn::tanh_forward(out.data(), x.data(), 3);
  CHECK(out[0] == doctest::Approx(-0.5));
  CHECK(out[1] == 0.0);
  CHECK(out[2] == doctest::Approx(0.5));
  Vec dx(3, 1.0), dout = {2, 2, 2};
  nn::tanh_backward(dx.data(), out.data(), dout.data(), 3);
  CHECK(dx[0] == doctest::Approx(2.5));  // 1 + 2 (1 - 0.25)
  CHECK(dx[1] == doctest::Approx(3.0));
  CHECK(dx[2] == doctest::Approx(2.5));

  Rng rng(24);
  const size_t n = 203;
  Vec inp = random_vector(n, rng, 1.5), r = random_vector(n, rng), y(n);
  auto loss = [&] {
    nn::tanh_forward(y.data(), inp.data(), static_cast<int64_t>(n));
    return dot(y, r);
  };
  loss();
  Vec dinp(n);
  nn::tanh_backward(dinp.data(), y.data(), r.data(), static_cast<int64_t>(n));
  check_gradient("tanh input", inp, dinp, loss);
}

TEST_CASE("batchnorm: batch statistics per channel; gradient of input, weight, bias") {
  // B = 2, C = 2, HW = 2. Channel 0 holds 1, 3 (image 0) and 5, 7 (image 1): mean 4, biased
  // variance (9 + 1 + 1 + 9) / 4 = 5. Channel 1 is constant: variance 0, out = b.
  Vec x = {1, 3, 2, 2, 5, 7, 2, 2}, w = {2, 1}, b = {0.5, -1}, out(8), mean(2), rstd(2);
  std::vector<double> sums(4);
  nn::batchnorm_sums(sums.data(), x.data(), 2, 2, 2);
  CHECK(sums == std::vector<double>{16, 8, 1 + 9 + 25 + 49, 16});
  nn::batchnorm_forward(out.data(), mean.data(), rstd.data(), sums.data(), 4, x.data(), w.data(), b.data(), 2, 2, 2);
  const double r0 = 1 / std::sqrt(5 + 1e-5);
  CHECK(mean[0] == doctest::Approx(4));
  CHECK(mean[1] == doctest::Approx(2));
  CHECK(rstd[0] == doctest::Approx(r0));
  CHECK(rstd[1] == doctest::Approx(1 / std::sqrt(1e-5)));
  const Vec expected = {-3 * r0 * 2 + 0.5, -r0 * 2 + 0.5, -1, -1, r0 * 2 + 0.5, 3 * r0 * 2 + 0.5, -1, -1};
  for (size_t i = 0; i < 8; ++i) CHECK(out[i] == doctest::Approx(expected[i]));

  Vec running_mean = {1, -2}, running_var = {4, 0.25};
  nn::batchnorm_inference(out.data(), x.data(), w.data(), b.data(), running_mean.data(), running_var.data(), 2, 2, 2);
  CHECK(out[0] == doctest::Approx((1 - 1) / std::sqrt(4 + 1e-5) * 2 + 0.5));
  CHECK(out[5] == doctest::Approx((7 - 1) / std::sqrt(4 + 1e-5) * 2 + 0.5));
  CHECK(out[2] == doctest::Approx((2 + 2) / std::sqrt(0.25 + 1e-5) - 1));

  for (int64_t HW : {int64_t{5}, int64_t{1}}) {  // BatchNorm2d and BatchNorm1d
    CAPTURE(HW);
    Rng rng(25);
    const int64_t B = 3, C = 4;
    const size_t n = static_cast<size_t>(B * C * HW);
    Vec inp = random_vector(n, rng, 2.0), r = random_vector(n, rng), y(n), m(static_cast<size_t>(C)),
        s(static_cast<size_t>(C));
    Vec wt = random_vector(static_cast<size_t>(C), rng), bs = random_vector(static_cast<size_t>(C), rng);
    for (auto& v : inp) v += 0.5;  // a mean that is not zero
    const double count = static_cast<double>(B * HW);
    auto loss = [&] {
      std::vector<double> sums(static_cast<size_t>(2 * C));
      nn::batchnorm_sums(sums.data(), inp.data(), B, C, HW);
      nn::batchnorm_forward(y.data(), m.data(), s.data(), sums.data(), count, inp.data(), wt.data(), bs.data(), B, C,
                            HW);
      return dot(y, r);
    };
    loss();
    Vec dinp(n), dw(static_cast<size_t>(C)), db(static_cast<size_t>(C));
    std::vector<double> sums(static_cast<size_t>(2 * C));
    nn::batchnorm_backward_sums(sums.data(), r.data(), inp.data(), m.data(), s.data(), B, C, HW);
    nn::batchnorm_backward(dinp.data(), dw.data(), db.data(), sums.data(), sums.data(), count, r.data(), inp.data(),
                           wt.data(), m.data(), s.data(), B, C, HW);
    check_gradient("batchnorm input", inp, dinp, loss);
    check_gradient("batchnorm weight", wt, dw, loss);
    check_gradient("batchnorm bias", bs, db, loss);

    // Accumulates, and a null pointer skips a gradient.
    Vec dw2 = dw;
    nn::batchnorm_backward<double>(nullptr, dw2.data(), nullptr, sums.data(), sums.data(), count, r.data(),
                                   inp.data(), wt.data(), m.data(), s.data(), B, C, HW);
    for (size_t c = 0; c < dw.size(); ++c) CHECK(dw2[c] == doctest::Approx(2 * dw[c]));
  }
}

TEST_CASE("gan_loss: bce, hinge and linear values; gradient") {
  const Vec logits = {0.0, 2.0, 2.0, -1000.0, 1000.0};
  const std::vector<float> signs = {1, 1, -1, -1, 1};
  // u = 0, 2, -2, 1000, 1000: softplus(-u) = log 2, log(1 + e^-2), 2 + log(1 + e^-2), 0, 0.
  const double e2 = std::log1p(std::exp(-2.0));
  CHECK(nn::gan_loss_forward(logits.data(), signs.data(), 1, GanLoss::bce) == doctest::Approx(std::log(2.0)));
  CHECK(nn::gan_loss_forward(logits.data(), signs.data(), 5, GanLoss::bce) ==
        doctest::Approx((std::log(2.0) + e2 + 2 + e2) / 5));
  const Vec big = {1000.0};
  const std::vector<float> fake = {-1};
  CHECK(nn::gan_loss_forward(big.data(), fake.data(), 1, GanLoss::bce) == doctest::Approx(1000));  // no overflow
  // hinge: relu(1 - u) = 1, 0, 3, 0, 0; linear: -u.
  CHECK(nn::gan_loss_forward(logits.data(), signs.data(), 5, GanLoss::hinge) == doctest::Approx(4.0 / 5));
  CHECK(nn::gan_loss_forward(logits.data(), signs.data(), 5, GanLoss::linear) == doctest::Approx(-2000.0 / 5));

  Vec d(5, 1.0);
  nn::gan_loss_backward(d.data(), logits.data(), signs.data(), 5, GanLoss::bce, 2.0);
  // weight / n * sign * -sigmoid(-u): sigmoid(0) = 1/2; sigmoid(-1000) = 0.
  CHECK(d[0] == doctest::Approx(1 - 0.4 * 0.5));
  CHECK(d[2] == doctest::Approx(1 + 0.4 / (1 + std::exp(-2.0))));
  CHECK(d[3] == doctest::Approx(1));
  CHECK(d[4] == doctest::Approx(1));
  Vec dl(5, 0.0);
  nn::gan_loss_backward(dl.data(), logits.data(), signs.data(), 5, GanLoss::linear, 1.0);
  for (size_t i = 0; i < 5; ++i) CHECK(dl[i] == doctest::Approx(-signs[i] / 5.0));

  Rng rng(26);
  const size_t n = 64;
  std::vector<float> s(n);
  for (auto& v : s) v = rng.uniform() < 0.5f ? 1.0f : -1.0f;
  for (GanLoss kind : {GanLoss::bce, GanLoss::hinge, GanLoss::linear}) {
    CAPTURE(static_cast<int>(kind));
    Vec z = random_vector(n, rng, 2.0);
    for (size_t i = 0; i < n; ++i)
      if (std::abs(s[i] * z[i] - 1) < 1e-3) z[i] += 0.1;  // away from the hinge's kink
    const double weight = 0.7;
    auto loss = [&] { return weight * nn::gan_loss_forward(z.data(), s.data(), static_cast<int64_t>(n), kind); };
    Vec dz(n);
    nn::gan_loss_backward(dz.data(), z.data(), s.data(), static_cast<int64_t>(n), kind, weight);
    check_gradient("gan loss logits", z, dz, loss);
  }
}

TEST_CASE("mul: elementwise product; gradient of both factors") {
  Vec a = {1, 2, 3}, b = {4, -5, 0.5}, out(3);
  nn::mul_forward(out.data(), a.data(), b.data(), 3);
  CHECK(out == Vec{4, -10, 1.5});
  Vec da(3, 1.0), dout = {1, 2, 3};
  nn::mul_backward(da.data(), da.data(), dout.data(), a.data(), a.data(), 3);  // a * a: da += 2 a dout
  CHECK(da == Vec{3, 9, 19});

  Rng rng(27);
  const size_t n = 131;
  Vec x = random_vector(n, rng), z = random_vector(n, rng), r = random_vector(n, rng), y(n);
  auto loss = [&] {
    nn::mul_forward(y.data(), x.data(), z.data(), static_cast<int64_t>(n));
    return dot(y, r);
  };
  Vec dx(n), dz(n);
  nn::mul_backward(dx.data(), dz.data(), r.data(), x.data(), z.data(), static_cast<int64_t>(n));
  check_gradient("mul first factor", x, dx, loss);
  check_gradient("mul second factor", z, dz, loss);
  nn::mul_backward<double>(nullptr, nullptr, r.data(), x.data(), z.data(), static_cast<int64_t>(n));  // no-op
}

TEST_CASE("gradient_penalty: mean of (||g_n|| - 1)^2; gradient") {
  Vec g = {3, 4, 0, 0};  // norms 5 and 0: ((5 - 1)^2 + (0 - 1)^2) / 2
  CHECK(nn::gradient_penalty_forward(g.data(), 2, 2) == doctest::Approx(8.5));
  Vec dg(4, 1.0);
  nn::gradient_penalty_backward(dg.data(), g.data(), 2, 2, 1.0);
  // Row 0: 2 (5 - 1) / 5 g / 2 = 0.8 g; row 1 (norm 0): nothing.
  CHECK(dg[0] == doctest::Approx(1 + 2.4));
  CHECK(dg[1] == doctest::Approx(1 + 3.2));
  CHECK(dg[2] == 1.0);
  CHECK(dg[3] == 1.0);

  Rng rng(28);
  const int64_t N = 5, D = 12;
  Vec x = random_vector(static_cast<size_t>(N * D), rng, 0.4);
  const double weight = 1.3;
  auto loss = [&] { return weight * nn::gradient_penalty_forward(x.data(), N, D); };
  Vec dx(x.size());
  nn::gradient_penalty_backward(dx.data(), x.data(), N, D, weight);
  check_gradient("gradient penalty", x, dx, loss);
}
