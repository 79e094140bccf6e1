// The GAN's layers through the tape (tensor/graph.h), in float: batch normalization's running
// statistics and evaluation mode, the GAN losses as starting points of backward() (two of them
// on one graph add up), the product with a constant, the gradient penalty, and reshaped().
// The kernels' finite-difference checks are in test_activations.cpp.
#include <doctest/doctest.h>

#include <cmath>
#include <omp.h>
#include <stdexcept>
#include <vector>

#include "core/rng.h"
#include "tensor/activations.h"
#include "tensor/graph.h"
#include "tensor/shards.h"
#include "tensor/tensor.h"

using namespace gen;

namespace {

// A training graph's tensor holding these values (its gradient zeroed).
Tensor filled(Graph& g, std::vector<int64_t> shape, const std::vector<float>& values) {
  Tensor t = g.tensor(std::move(shape));
  std::copy(values.begin(), values.end(), t.data);
  return t;
}

std::vector<float> normals(size_t n, Rng& rng, float scale = 1, float shift = 0) {
  std::vector<float> v(n);
  for (auto& x : v) x = shift + scale * rng.normal();
  return v;
}

}  // namespace

TEST_CASE("Graph::batchnorm: batch statistics and running statistics in training, running ones in evaluation") {
  Rng rng(31);
  for (std::vector<int64_t> shape : {std::vector<int64_t>{4, 3, 2, 5}, std::vector<int64_t>{6, 3}}) {
    CAPTURE(shape.size());
    const int64_t B = shape[0], C = shape[1], HW = shape.size() == 4 ? shape[2] * shape[3] : 1, n = B * HW;
    const std::vector<float> x = normals(static_cast<size_t>(B * C * HW), rng, 2, 0.7f),
                             w = normals(static_cast<size_t>(C), rng), b = normals(static_cast<size_t>(C), rng);
    Parameters params;
    auto wi = params.add("bn.weight", {C}, false), bi = params.add("bn.bias", {C}, false);
    params.allocate();
    std::copy(w.begin(), w.end(), params.tensor(wi).data);
    std::copy(b.begin(), b.end(), params.tensor(bi).data);
    std::vector<float> running_mean(static_cast<size_t>(C), 0.5f), running_var(static_cast<size_t>(C), 2.0f);

    // The statistics of each channel, in double.
    std::vector<double> mean(static_cast<size_t>(C)), var(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) {
      double s = 0, sq = 0;
      for (int64_t i = 0; i < B; ++i)
        for (int64_t p = 0; p < HW; ++p) s += x[static_cast<size_t>((i * C + c) * HW + p)];
      double m = s / static_cast<double>(n);
      for (int64_t i = 0; i < B; ++i)
        for (int64_t p = 0; p < HW; ++p) sq += std::pow(x[static_cast<size_t>((i * C + c) * HW + p)] - m, 2);
      mean[static_cast<size_t>(c)] = m;
      var[static_cast<size_t>(c)] = sq / static_cast<double>(n);
    }

    Arena arena;
    {
      Graph g(arena, true);
      Tensor xt = filled(g, shape, x);
      Tensor out = g.batchnorm(xt, params.tensor(wi), params.tensor(bi), running_mean.data(), running_var.data(), 0.1f);
      CHECK(out.shape == shape);
      for (int64_t i = 0; i < B; ++i)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t p = 0; p < HW; ++p) {
            size_t k = static_cast<size_t>((i * C + c) * HW + p), cc = static_cast<size_t>(c);
            double expected = (x[k] - mean[cc]) / std::sqrt(var[cc] + 1e-5) * w[cc] + b[cc];
            CHECK(out.data[k] == doctest::Approx(expected).epsilon(1e-5));
          }
      for (size_t c = 0; c < static_cast<size_t>(C); ++c) {
        CHECK(running_mean[c] == doctest::Approx(0.9 * 0.5 + 0.1 * mean[c]).epsilon(1e-6));
        CHECK(running_var[c] ==
              doctest::Approx(0.9 * 2.0 + 0.1 * var[c] * static_cast<double>(n) / static_cast<double>(n - 1))
                  .epsilon(1e-6));
      }
      // The linear loss -mean(out) gives dout = -1/N everywhere: db = -B HW / N per channel, and
      // (the normalized values summing to 0 in each channel) dw and dx 0.
      std::vector<float> signs(static_cast<size_t>(out.size()), 1.0f);
      g.gan_loss(reshaped(out, {out.size()}), signs.data(), GanLoss::linear);
      g.backward();
      for (int64_t c = 0; c < C; ++c) {
        CHECK(params.tensor(bi).grad[c] == doctest::Approx(-1.0 / static_cast<double>(C)));
        CHECK(params.tensor(wi).grad[c] == doctest::Approx(0).scale(1));
      }
      for (int64_t k = 0; k < xt.size(); ++k) CHECK(xt.grad[k] == doctest::Approx(0).scale(1));
    }

    // Evaluation: the running statistics, left as they are.
    const std::vector<float> rm = running_mean, rv = running_var;
    arena.reset();
    Graph g(arena, false);
    Tensor out = g.batchnorm(g.constant(shape, x.data()), params.tensor(wi), params.tensor(bi), running_mean.data(),
                             running_var.data());
    for (int64_t k = 0; k < out.size(); ++k) {
      size_t c = static_cast<size_t>(k / HW % C);
      double expected = (x[static_cast<size_t>(k)] - rm[c]) / std::sqrt(rv[c] + 1e-5) * w[c] + b[c];
      CHECK(out.data[k] == doctest::Approx(expected).epsilon(1e-5));
    }
    CHECK(running_mean == rm);
    CHECK(running_var == rv);
    CHECK_THROWS_AS(g.batchnorm(out, params.tensor(wi), params.tensor(bi), nullptr, nullptr), std::logic_error);
  }
}

TEST_CASE("Graph::batchnorm in shards: the whole batch's statistics and gradients, the same bits on any threads") {
  // A batch of 8 in 4 shards of 2 against the batch in one graph: the shards meet twice (the
  // forward's sums, the backward's), so each normalizes with the batch's mean and variance and
  // sends back the batch's gradient.
  Rng rng(47);
  const int64_t B = 8, C = 3, HW = 5, P = C * HW;
  const std::vector<float> x = normals(static_cast<size_t>(B * P), rng, 1.5f, 0.4f),
                           signs = normals(static_cast<size_t>(B * P), rng);
  Parameters params;
  auto wi = params.add("bn.weight", {C}, false), bi = params.add("bn.bias", {C}, false);
  params.allocate();
  for (int64_t c = 0; c < C; ++c) params.tensor(wi).data[c] = 1.0f + 0.3f * static_cast<float>(c), params.tensor(bi).data[c] = 0.1f;

  struct Result {
    std::vector<float> out, dx, dw, db, running;
  };
  auto whole = [&] {
    Result r;
    r.running.assign(static_cast<size_t>(2 * C), 1.0f);
    Arena arena;
    Graph g(arena, true);
    params.zero_grads();
    Tensor xt = filled(g, {B, C, HW}, x);
    Tensor out = g.batchnorm(xt, params.tensor(wi), params.tensor(bi), r.running.data(), r.running.data() + C);
    g.gan_loss(reshaped(out, {B * P}), signs.data(), GanLoss::linear);
    g.backward();
    r.out.assign(out.data, out.data + B * P);
    r.dx.assign(xt.grad, xt.grad + B * P);
    r.dw.assign(params.tensor(wi).grad, params.tensor(wi).grad + C);
    r.db.assign(params.tensor(bi).grad, params.tensor(bi).grad + C);
    return r;
  };
  auto sharded = [&](int threads) {
    Result r;
    r.running.assign(static_cast<size_t>(2 * C), 1.0f);
    r.out.resize(static_cast<size_t>(B * P));
    r.dx.resize(static_cast<size_t>(B * P));
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    params.set_shards(4);
    std::vector<Arena> arenas(4);
    std::vector<Tensor> xs(4), outs(4);
    run_shards(params, arenas, true, [&](int shard, Graph& g) {
      const int64_t at = shard * 2 * P;
      xs[static_cast<size_t>(shard)] = g.tensor({2, C, HW});
      std::copy(x.begin() + at, x.begin() + at + 2 * P, xs[static_cast<size_t>(shard)].data);
      Tensor out = g.batchnorm(xs[static_cast<size_t>(shard)], params.in_shard(params.tensor(wi), shard),
                               params.in_shard(params.tensor(bi), shard), r.running.data(), r.running.data() + C);
      outs[static_cast<size_t>(shard)] = out;
      return ShardFigures{g.gan_loss(reshaped(out, {2 * P}), signs.data() + at, GanLoss::linear)};
    });
    omp_set_num_threads(before);
    params.set_shards(1);
    for (int s = 0; s < 4; ++s) {
      std::copy(outs[static_cast<size_t>(s)].data, outs[static_cast<size_t>(s)].data + 2 * P, r.out.begin() + s * 2 * P);
      // Each shard's input gradient is that of its own mean loss: 4 times its share of the batch's.
      for (int64_t k = 0; k < 2 * P; ++k) r.dx[static_cast<size_t>(s * 2 * P + k)] = xs[static_cast<size_t>(s)].grad[k] / 4;
    }
    r.dw.assign(params.tensor(wi).grad, params.tensor(wi).grad + C);
    r.db.assign(params.tensor(bi).grad, params.tensor(bi).grad + C);
    return r;
  };
  const Result one = whole(), four = sharded(1);
  auto close = [](const std::vector<float>& a, const std::vector<float>& b) {
    REQUIRE(a.size() == b.size());
    for (size_t k = 0; k < a.size(); ++k) CHECK(a[k] == doctest::Approx(b[k]).epsilon(1e-5).scale(1e-6));
  };
  close(four.out, one.out);
  close(four.dx, one.dx);
  close(four.dw, one.dw);
  close(four.db, one.db);
  close(four.running, one.running);  // moved once per batch, not once per shard
  for (int threads : {2, 3, 4, 8}) {
    CAPTURE(threads);
    const Result again = sharded(threads);
    CHECK(again.out == four.out);
    CHECK(again.dx == four.dx);
    CHECK(again.dw == four.dw);
    CHECK(again.db == four.db);
    CHECK(again.running == four.running);
  }
}

TEST_CASE("ShardTeam: the first error ends every shard, also those waiting to meet") {
  ShardTeam team(4, nullptr);
  for (int failing : {0, 3}) {
    CAPTURE(failing);
    std::vector<int> met(4, 0);
    CHECK_THROWS_WITH_AS(team.run([&](int k) {
      double v = k;
      if (k == failing) throw std::runtime_error("shard failed");
      team.member(k)->sum(&v, 1);
      met[static_cast<size_t>(k)] = 1;
    }), "shard failed", std::runtime_error);
    CHECK(met == std::vector<int>{0, 0, 0, 0});
  }
  // And the sums: every shard gets the total.
  std::vector<double> got(4);
  team.run([&](int k) {
    double v[2] = {static_cast<double>(k), 1};
    team.member(k)->sum(v, 2);
    got[static_cast<size_t>(k)] = v[0] * 10 + v[1];
  });
  CHECK(got == std::vector<double>{64, 64, 64, 64});
}

TEST_CASE("Graph::gan_loss: weight times the mean loss; two losses on one graph add their gradients") {
  const std::vector<float> z = {0.0f, 1.5f, -0.25f, 3.0f};
  const std::vector<float> real = {1, 1, 1, 1}, fake = {-1, -1, -1, -1};
  Arena arena;
  Graph g(arena, true);
  Tensor logits = filled(g, {4, 1}, z);
  float bce = g.gan_loss(logits, real.data(), GanLoss::bce);
  float hinge = g.gan_loss(logits, fake.data(), GanLoss::hinge, 0.5f);
  double expected_bce = 0, expected_hinge = 0;
  for (float v : z) {
    expected_bce += std::log1p(std::exp(-static_cast<double>(v))) / 4;
    expected_hinge += 0.5 * std::max(0.0, 1.0 + v) / 4;
  }
  CHECK(bce == doctest::Approx(expected_bce));
  CHECK(hinge == doctest::Approx(expected_hinge));
  CHECK(g.gan_loss(logits, real.data(), GanLoss::linear, 2.0f) == doctest::Approx(-2.0 * (0 + 1.5 - 0.25 + 3) / 4));
  g.backward();
  // d/dz: bce -sigmoid(-z) / 4; hinge 0.5 (1 where -z < 1) / 4; linear -2 / 4.
  for (size_t i = 0; i < 4; ++i) {
    double expected = -1 / (1 + std::exp(static_cast<double>(z[i]))) / 4 + 0.5 / 4 - 0.5;
    CHECK(logits.grad[i] == doctest::Approx(expected));
  }

  // An evaluation graph gives the loss and records nothing.
  arena.reset();
  Graph eval(arena, false);
  CHECK(eval.gan_loss(eval.constant({4}, z.data()), real.data(), GanLoss::bce) == doctest::Approx(expected_bce));
  eval.backward();
}

TEST_CASE("Graph::mul, leaky_relu, tanh and gradient_penalty: values and gradients through the tape") {
  Rng rng(32);
  const std::vector<float> a = normals(12, rng), c = normals(12, rng);
  Arena arena;
  Graph g(arena, true);
  Tensor at = filled(g, {3, 4}, a);
  Tensor ct = g.constant({3, 4}, c.data());  // no gradient
  CHECK_THROWS_AS(g.mul(at, g.constant({5}, c.data())), std::logic_error);
  Tensor prod = g.mul(at, ct);
  Tensor act = g.leaky_relu(prod, 0.2f);
  Tensor t = g.tanh(act);
  float penalty = g.gradient_penalty(t, 3.0f);
  g.backward();

  // The same chain by the kernels, in double: forward, then backward from the penalty.
  std::vector<double> ad(a.begin(), a.end()), cd(c.begin(), c.end()), p(12), l(12), h(12);
  nn::mul_forward(p.data(), ad.data(), cd.data(), 12);
  nn::leaky_relu_forward(l.data(), p.data(), 12, 0.2);
  nn::tanh_forward(h.data(), l.data(), 12);
  CHECK(penalty == doctest::Approx(3.0 * nn::gradient_penalty_forward(h.data(), 3, 4)));
  std::vector<double> dh(12), dl(12), dp(12), da(12);
  nn::gradient_penalty_backward(dh.data(), h.data(), 3, 4, 3.0);
  nn::tanh_backward(dl.data(), h.data(), dh.data(), 12);
  nn::leaky_relu_backward(dp.data(), p.data(), dl.data(), 12, 0.2);
  nn::mul_backward<double>(da.data(), nullptr, dp.data(), ad.data(), cd.data(), 12);
  for (size_t i = 0; i < 12; ++i) {
    CHECK(t.data[i] == doctest::Approx(h[i]).epsilon(1e-5));
    CHECK(at.grad[i] == doctest::Approx(da[i]).epsilon(1e-4));
  }
}

TEST_CASE("reshaped: the same values and gradient under another shape of as many values") {
  Arena arena;
  Graph g(arena, true);
  Tensor t = g.tensor({2, 3, 4});
  Tensor r = reshaped(t, {6, 4});
  CHECK(r.data == t.data);
  CHECK(r.grad == t.grad);
  CHECK(r.shape == std::vector<int64_t>{6, 4});
  CHECK_THROWS_AS(reshaped(t, {5, 4}), std::logic_error);
}
