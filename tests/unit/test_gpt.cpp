#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <utility>
#include <vector>

#include <omp.h>

#include "core/error.h"
#include "core/rng.h"
#include "models/gpt.h"
#include "models/sampler.h"
#include "tensor/optimizer.h"
#include "train/train_gpt.h"

using namespace gen;

TEST_CASE("GPT: nanoGPT's character config has nanoGPT's parameter count") {
  Gpt model({.vocab = 65, .context = 64, .layers = 4, .heads = 4, .embd = 128});
  CHECK(model.params().size() == 809856);
  // nanoGPT reports the count without the position embedding: "0.80M".
  CHECK(model.params().size() - 64 * 128 == 801664);
  CHECK_THROWS_AS(Gpt({.vocab = 65, .context = 64, .layers = 4, .heads = 3, .embd = 128}), UsageError);
}

namespace {
// The gradients in model.params().grads() against central differences of loss(): per weight, the
// relative error of the whole gradient, ||numeric - analytic|| / ||numeric||. (Float finite
// differences are noisy element by element; a missing or wrong path is not.)
void check_gpt_gradients(Gpt& model, const std::function<double()>& loss) {
  std::vector<float> analytic(model.params().grads(), model.params().grads() + model.params().size());
  for (const auto& view : model.params().views()) {
    CAPTURE(view.name);
    double diff = 0, norm = 0;
    for (size_t i = view.offset; i < view.offset + view.size; ++i) {
      float& w = model.params().values()[i];
      const float saved = w, h = 1e-2f;
      w = saved + h;
      const double plus = loss();
      w = saved - h;
      const double minus = loss();
      w = saved;
      const double numeric = (plus - minus) / (2.0 * h);
      diff += (numeric - analytic[i]) * (numeric - analytic[i]);
      norm += numeric * numeric;
    }
    CHECK(norm > 0);
    CHECK(std::sqrt(diff / norm) < 0.03);
  }
}
}  // namespace

TEST_CASE("GPT: the tape's gradients match finite differences of the loss (tied head included)") {
  Gpt model({.vocab = 7, .context = 4, .layers = 2, .heads = 2, .embd = 8});
  Rng rng(3);
  model.init(rng);
  // Larger random weights than the init so that every path carries gradient.
  for (size_t i = 0; i < model.params().size(); ++i) model.params().values()[i] += 0.3f * rng.normal();
  const int64_t B = 2, T = 4;
  std::vector<uint32_t> ids = {1, 2, 3, 4, 6, 5, 0, 1}, targets = {2, 3, 4, 5, 5, 0, 1, 2};
  Arena arena;
  auto loss_at = [&] {
    arena.reset();
    Graph g(arena, false);
    return static_cast<double>(model.loss(g, ids.data(), targets.data(), B, T).mean);
  };
  arena.reset();
  Graph g(arena, true);
  model.params().zero_grads();
  model.loss(g, ids.data(), targets.data(), B, T);
  g.backward();
  check_gpt_gradients(model, loss_at);
}

TEST_CASE("GPT with dropout: the masks fixed by the key, gradients match finite differences; off when evaluating") {
  Gpt model({.vocab = 7, .context = 4, .layers = 2, .heads = 2, .embd = 8});
  Rng rng(5);
  model.init(rng);
  for (size_t i = 0; i < model.params().size(); ++i) model.params().values()[i] += 0.3f * rng.normal();
  const int64_t B = 2, T = 4;
  std::vector<uint32_t> ids = {1, 2, 3, 4, 6, 5, 0, 1}, targets = {2, 3, 4, 5, 5, 0, 1, 2};
  const GptDropout dropout{.p = 0.3f, .key = 12345};
  Arena arena;
  auto loss_at = [&](bool training, GptDropout d) {
    arena.reset();
    Graph g(arena, training);
    return static_cast<double>(model.loss(g, ids.data(), targets.data(), B, T, 0, d).mean);
  };
  const double plain = loss_at(false, {}), evaluated = loss_at(false, dropout), dropped = loss_at(true, dropout);
  CHECK(evaluated == plain);                     // evaluation never drops
  CHECK(dropped != plain);                       // training with p > 0 does
  CHECK(loss_at(true, dropout) == dropped);      // the key decides the masks
  CHECK(loss_at(true, {.p = 0.3f, .key = 54321}) != dropped);
  CHECK(loss_at(true, {}) == plain);             // p = 0: the plain forward pass
  arena.reset();
  Graph g(arena, true);
  model.params().zero_grads();
  model.loss(g, ids.data(), targets.data(), B, T, 0, dropout);
  g.backward();
  check_gpt_gradients(model, [&] { return loss_at(true, dropout); });
}

TEST_CASE("evaluate_text: one window is the model's loss on it; sliding windows predict each token once") {
  Gpt model({.vocab = 7, .context = 4, .layers = 1, .heads = 2, .embd = 8});
  Rng rng(6);
  model.init(rng);
  std::vector<uint32_t> ids = {1, 2, 3, 4, 5};  // T + 1 tokens: one window
  std::vector<size_t> bytes = {1, 2, 1, 3, 1};
  TextEvaluation e = evaluate_text(model, ids, bytes, 8);
  CHECK(e.tokens == 4);
  CHECK(e.bytes == 7);  // the predicted tokens' bytes: not the first token's
  Arena arena;
  Graph g(arena, false);
  const double window = model.loss(g, ids.data(), ids.data() + 1, 1, 4).mean;
  CHECK(e.nats / 4 == doctest::Approx(window).epsilon(1e-5));
  // 23 tokens: every token after the first predicted once, whatever the windows per batch.
  std::vector<uint32_t> long_ids;
  for (int i = 0; i < 23; ++i) long_ids.push_back(static_cast<uint32_t>((i * 3) % 7));
  std::vector<size_t> ones(long_ids.size(), 1);
  const TextEvaluation a = evaluate_text(model, long_ids, ones, 1), b = evaluate_text(model, long_ids, ones, 8);
  CHECK(a.tokens == 22);
  CHECK(a.bytes == 22);
  CHECK(b.tokens == 22);
  CHECK(a.nats == doctest::Approx(b.nats).epsilon(1e-6));
}

TEST_CASE("GPT: a batch in shards gives the whole batch's loss and gradient, the same on any thread count") {
  Gpt model({.vocab = 11, .context = 8, .layers = 2, .heads = 2, .embd = 16});
  Rng rng(5);
  model.init(rng);
  const int64_t B = 4, T = 8;
  std::vector<uint32_t> ids(B * T), targets(B * T);
  for (size_t i = 0; i < ids.size(); ++i) {
    ids[i] = rng.below(11);
    targets[i] = rng.below(11);
  }
  std::vector<Arena> arenas(8);
  const int saved_threads = omp_get_max_threads();
  auto run = [&](int shards, int threads) {
    model.params().set_shards(shards);
    omp_set_num_threads(threads);
    auto loss = model.batch_loss(arenas, ids.data(), targets.data(), B, T, /*training=*/true);
    auto eval = model.batch_loss(arenas, ids.data(), targets.data(), B, T, /*training=*/false);
    CHECK(eval.mean == loss.mean);
    CHECK(eval.correct == loss.correct);
    return std::make_pair(loss, std::vector<float>(model.params().grads(), model.params().grads() + model.params().size()));
  };
  auto [whole, g1] = run(1, 1);
  // One graph over the whole batch, as the gradient check above runs it.
  Arena arena;
  Graph g(arena, true);
  model.params().set_shards(1);
  model.params().zero_grads();
  auto direct = model.loss(g, ids.data(), targets.data(), B, T);
  g.backward();
  CHECK(whole.mean == doctest::Approx(direct.mean).epsilon(1e-6));
  CHECK(std::equal(g1.begin(), g1.end(), model.params().grads()));
  for (int shards : {2, 4}) {
    CAPTURE(shards);
    auto [one, a] = run(shards, 1);
    auto [two, b] = run(shards, 2);
    CHECK(one.mean == two.mean);
    CHECK(one.correct == two.correct);
    CHECK(a == b);  // bit for bit: the shards' order, not the threads', fixes the sums
    CHECK(one.mean == doctest::Approx(whole.mean).epsilon(1e-5));
    CHECK(one.correct == whole.correct);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      diff += (a[i] - g1[i]) * static_cast<double>(a[i] - g1[i]);
      norm += g1[i] * static_cast<double>(g1[i]);
    }
    CHECK(std::sqrt(diff / norm) < 1e-5);
  }
  CHECK_THROWS_AS(model.params().set_shards(3), std::logic_error);  // not a power of two
  model.params().set_shards(8);                                       // more shards than sequences
  CHECK_THROWS_AS(model.batch_loss(arenas, ids.data(), targets.data(), B, T, true), std::logic_error);
  omp_set_num_threads(saved_threads);
}

namespace {
// 150 steps of a small GPT on a repeating sequence (period 5: each token determines the next),
// all weights by AdamW or the blocks' matrices by Muon; the training losses.
std::vector<float> learn_pattern(uint64_t seed, int threads, bool muon) {
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(threads);
  Gpt model({.vocab = 8, .context = 8, .layers = 2, .heads = 2, .embd = 32});
  Rng rng(seed);
  model.init(rng);
  AdamW adam(model.params().size(), {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f});
  const Muon by_muon(model.block_matrices(), {.momentum = 0.95f, .weight_decay = 0.1f});
  if (muon) adam.leave_out(model.block_matrices(), model.params().views().size());
  const int64_t B = 4, T = 8;
  const uint32_t pattern[] = {1, 5, 2, 7, 3};
  std::vector<uint32_t> ids(B * T), targets(B * T);
  Arena arena;
  std::vector<float> losses;
  for (int step = 0; step < 150; ++step) {
    for (int64_t b = 0; b < B; ++b) {
      uint32_t offset = rng.below(5);
      for (int64_t t = 0; t < T; ++t) {
        ids[b * T + t] = pattern[(offset + t) % 5];
        targets[b * T + t] = pattern[(offset + t + 1) % 5];
      }
    }
    arena.reset();
    Graph g(arena, true);
    model.params().zero_grads();
    auto loss = model.loss(g, ids.data(), targets.data(), B, T);
    g.backward();
    const float lr = cosine_lr(step, {.lr = 1e-2f, .min_lr = 1e-3f, .warmup = 10, .decay_steps = 150});
    const float scale = clip_scale(grad_norm(model.params()), 1.0f);
    adam.step(model.params(), lr, scale);
    if (muon) by_muon.step(model.params(), adam.m().data(), lr, scale);
    losses.push_back(loss.mean);
  }
  omp_set_num_threads(saved_threads);
  return losses;
}
}  // namespace

TEST_CASE("GPT learns a repeating sequence: loss below 0.05 in 150 steps, the same for the same seed") {
  std::vector<float> a = learn_pattern(7, omp_get_max_threads(), false), b = learn_pattern(7, omp_get_max_threads(), false);
  CHECK(a.front() > 1.5f);  // about log(8) at the start
  CHECK(a.back() < 0.05f);
  CHECK(a == b);
}

TEST_CASE("AdamW: one step by hand, decay only where asked; schedule; clipping") {
  Parameters params;
  params.add("w", {2}, true);
  params.add("b", {1}, false);
  params.allocate();
  params.values()[0] = 1.0f;
  params.values()[1] = -2.0f;
  params.values()[2] = 0.5f;
  params.grads()[0] = 0.1f;
  params.grads()[1] = -0.3f;
  params.grads()[2] = 0.2f;
  AdamW adam(params.size(), {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f});
  adam.step(params, 0.01f);
  // After one step m_hat = g and v_hat = g^2, so the update is lr * sign(g) (plus decay).
  CHECK(params.values()[0] == doctest::Approx(1.0f * (1 - 0.01f * 0.1f) - 0.01f).epsilon(1e-6));
  CHECK(params.values()[1] == doctest::Approx(-2.0f * (1 - 0.01f * 0.1f) + 0.01f).epsilon(1e-6));
  CHECK(params.values()[2] == doctest::Approx(0.5f - 0.01f).epsilon(1e-6));

  LrSchedule s{.lr = 1e-3f, .min_lr = 1e-4f, .warmup = 100, .decay_steps = 2000};
  CHECK(cosine_lr(0, s) == doctest::Approx(1e-3 / 101));
  CHECK(cosine_lr(100, s) == doctest::Approx(1e-3));
  CHECK(cosine_lr(1050, s) == doctest::Approx(5.5e-4));
  CHECK(cosine_lr(2000, s) == doctest::Approx(1e-4));
  CHECK(cosine_lr(5000, s) == doctest::Approx(1e-4));

  params.grads()[0] = 3.0f;
  params.grads()[1] = 4.0f;
  params.grads()[2] = 0.0f;
  CHECK(clip_grad_norm(params, 1.0f) == doctest::Approx(5.0f));
  CHECK(params.grads()[0] == doctest::Approx(0.6f).epsilon(1e-5));
  CHECK(params.grads()[1] == doctest::Approx(0.8f).epsilon(1e-5));
}

TEST_CASE("orthogonalize: the polar factor's directions, singular values in 0.6..1.2; tall is wide transposed") {
  // For x = U S V^T, Newton-Schulz gives y = U f(S) V^T, and the exact polar factor is P = U V^T:
  // y P^T = U f(S) U^T (wide; P^T y for tall) is symmetric with eigenvalues f(S), which the
  // quintic puts in 0.68..1.14 for singular values above 2% of the largest. P by the cubic
  // iteration in double, run to convergence.
  Rng rng(5);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{24, 40}, {40, 24}, {8, 64}}) {
    CAPTURE(rows);
    CAPTURE(cols);
    const int64_t n = rows * cols, m = std::min(rows, cols);
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = rng.normal();
    std::vector<float> y = x, scratch;
    orthogonalize(y.data(), rows, cols, 5, scratch);
    // The polar factor: p <- 1.5 p - 0.5 p p^T p from p = x / |x|_F.
    std::vector<double> p(x.begin(), x.end());
    double norm = 0;
    for (double v : p) norm += v * v;
    for (double& v : p) v /= std::sqrt(norm);
    auto at = [cols](std::vector<double>& a, int64_t i, int64_t j) -> double& { return a[static_cast<size_t>(i * cols + j)]; };
    for (int k = 0; k < 100; ++k) {
      std::vector<double> gram(static_cast<size_t>(cols * cols), 0.0), next = p;  // p^T p
      for (int64_t i = 0; i < cols; ++i)
        for (int64_t j = 0; j < cols; ++j)
          for (int64_t r = 0; r < rows; ++r) gram[static_cast<size_t>(i * cols + j)] += at(p, r, i) * at(p, r, j);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < cols; ++j) {
          double sum = 0;
          for (int64_t i = 0; i < cols; ++i) sum += at(p, r, i) * gram[static_cast<size_t>(i * cols + j)];
          at(next, r, j) = 1.5 * at(p, r, j) - 0.5 * sum;
        }
      p = next;
    }
    // g = y P^T [rows, rows] (wide) or P^T y [cols, cols] (tall): m x m.
    std::vector<double> g(static_cast<size_t>(m * m), 0.0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < m; ++j) {
        double sum = 0;
        if (rows <= cols)
          for (int64_t k = 0; k < cols; ++k) sum += y[static_cast<size_t>(i * cols + k)] * at(p, j, k);
        else
          for (int64_t k = 0; k < rows; ++k) sum += at(p, k, i) * y[static_cast<size_t>(k * cols + j)];
        g[static_cast<size_t>(i * m + j)] = sum;
      }
    double asymmetry = 0;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < m; ++j)
        asymmetry = std::max(asymmetry, std::abs(g[static_cast<size_t>(i * m + j)] - g[static_cast<size_t>(j * m + i)]));
    CHECK(asymmetry < 1e-4);
    for (int trial = 0; trial < 50; ++trial) {  // Rayleigh quotients lie between the eigenvalues
      std::vector<double> z(static_cast<size_t>(m));
      double zz = 0, zgz = 0;
      for (double& v : z) v = rng.normal(), zz += v * v;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < m; ++j) zgz += z[static_cast<size_t>(i)] * g[static_cast<size_t>(i * m + j)] * z[static_cast<size_t>(j)];
      CHECK(zgz / zz > 0.6);
      CHECK(zgz / zz < 1.2);
    }
    // The transposed input gives the transposed output.
    std::vector<float> t(static_cast<size_t>(n));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) t[static_cast<size_t>(j * rows + i)] = x[static_cast<size_t>(i * cols + j)];
    orthogonalize(t.data(), cols, rows, 5, scratch);
    float largest = 0;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        largest = std::max(largest, std::abs(t[static_cast<size_t>(j * rows + i)] - y[static_cast<size_t>(i * cols + j)]));
    CHECK(largest == 0.0f);  // x^T's product is x's, transposed (orthogonalize works on the wide one)
  }
}

TEST_CASE("orthogonalize: the quintic's five iterations in double, where its Gram matrices are in one to four row blocks") {
  // The products w w^T and A A^T are symmetric, so orthogonalize multiplies only the row blocks
  // on and above the diagonal (64 rows or more each) and copies the rest: m = 40 is one block,
  // 136 two (68 + 68), 200 three (66, 67, 67), 260 four (65 each).
  Rng rng(8);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{40, 72}, {136, 150}, {210, 200}, {260, 264}}) {
    CAPTURE(rows);
    CAPTURE(cols);
    const bool wide = rows <= cols;
    const int64_t n = rows * cols, m = std::min(rows, cols), k = n / m;
    std::vector<float> x(static_cast<size_t>(n)), scratch;
    for (float& v : x) v = rng.normal();
    std::vector<double> w(static_cast<size_t>(n));  // the wide one of x and x^T, normalized
    double norm = 0;
    for (float v : x) norm += static_cast<double>(v) * v;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j)
        w[static_cast<size_t>(wide ? r * cols + j : j * rows + r)] = x[static_cast<size_t>(r * cols + j)] / std::sqrt(norm);
    for (int it = 0; it < 5; ++it) {
      std::vector<double> A(static_cast<size_t>(m * m), 0.0), B(static_cast<size_t>(m * m), 0.0), next = w;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < m; ++j)
          for (int64_t q = 0; q < k; ++q) A[static_cast<size_t>(i * m + j)] += w[static_cast<size_t>(i * k + q)] * w[static_cast<size_t>(j * k + q)];
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < m; ++j) {
          double sum = 0;
          for (int64_t q = 0; q < m; ++q) sum += A[static_cast<size_t>(i * m + q)] * A[static_cast<size_t>(q * m + j)];
          B[static_cast<size_t>(i * m + j)] = -4.7750 * A[static_cast<size_t>(i * m + j)] + 2.0315 * sum;
        }
      for (int64_t i = 0; i < m; ++i)
        for (int64_t q = 0; q < k; ++q) {
          double sum = 0;
          for (int64_t j = 0; j < m; ++j) sum += B[static_cast<size_t>(i * m + j)] * w[static_cast<size_t>(j * k + q)];
          next[static_cast<size_t>(i * k + q)] = 3.4445 * w[static_cast<size_t>(i * k + q)] + sum;
        }
      w = next;
    }
    orthogonalize(x.data(), rows, cols, 5, scratch);
    double worst = 0, largest = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < cols; ++j) {
        const double want = w[static_cast<size_t>(wide ? r * cols + j : j * rows + r)];
        worst = std::max(worst, std::abs(x[static_cast<size_t>(r * cols + j)] - want));
        largest = std::max(largest, std::abs(want));
      }
    CHECK(worst < 1e-4 * largest);
  }
}

TEST_CASE("Muon: Nesterov momentum in AdamW's m, the update orthogonal and scaled, AdamW leaves the matrix alone") {
  Parameters params;
  params.add("w", {6, 10}, true);
  params.add("b", {3}, false);
  params.allocate();
  Rng rng(3);
  for (size_t i = 0; i < params.size(); ++i) params.values()[i] = rng.normal(), params.grads()[i] = rng.normal();
  const std::vector<float> w0(params.values(), params.values() + params.size());
  const std::vector<float> g0(params.grads(), params.grads() + params.size());
  AdamW adam(params.size(), {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f});
  adam.leave_out({0}, params.views().size());
  const Muon muon({0}, {.momentum = 0.9f, .weight_decay = 0.1f});
  const float lr = 0.01f, scale = 0.5f;
  adam.step(params, lr, scale);
  for (size_t i = 0; i < 60; ++i) REQUIRE(params.values()[i] == w0[i]);  // not AdamW's
  const float bias = w0[60] - (g0[60] > 0 ? lr : -lr);  // a first step: lr sign(g)
  CHECK(params.values()[60] == doctest::Approx(bias).epsilon(1e-6));  // but the bias is
  muon.step(params, adam.m().data(), lr, scale);
  // The first step: m = g scale, the update g scale (1 + mu), made orthogonal (the scale does
  // not matter to it), times 0.2 sqrt(10) lr, after the decay.
  std::vector<float> u(g0.begin(), g0.begin() + 60), scratch;
  orthogonalize(u.data(), 6, 10, 5, scratch);
  for (size_t i = 0; i < 60; ++i) {
    CHECK(adam.m()[i] == doctest::Approx(g0[i] * scale).epsilon(1e-6));
    const float expected = w0[i] * (1 - lr * 0.1f) - lr * 0.2f * std::sqrt(10.0f) * u[i];
    CHECK(params.values()[i] == doctest::Approx(expected).epsilon(1e-4));
  }
  CHECK(params.values()[60] == bias);  // Muon leaves the bias alone
  // The second step's update is g + mu (mu m + g): the momentum's Nesterov form.
  const std::vector<float> w1(params.values(), params.values() + params.size());
  muon.step(params, adam.m().data(), lr, 1.0f);
  std::vector<float> v(60);
  for (size_t i = 0; i < 60; ++i) {
    const float m = 0.9f * g0[i] * scale + g0[i];
    CHECK(adam.m()[i] == doctest::Approx(m).epsilon(1e-5));
    v[i] = g0[i] + 0.9f * m;
  }
  orthogonalize(v.data(), 6, 10, 5, scratch);
  for (size_t i = 0; i < 60; ++i)
    CHECK(params.values()[i] == doctest::Approx(w1[i] * (1 - lr * 0.1f) - lr * 0.2f * std::sqrt(10.0f) * v[i]).epsilon(1e-4));
}

TEST_CASE("GPT with Muon learns a repeating sequence, the same bits on one thread and two") {
  CHECK(Gpt({.vocab = 8, .context = 8, .layers = 2, .heads = 2, .embd = 32}).block_matrices().size() == 8);  // 4 a layer
  std::vector<float> a = learn_pattern(7, 1, true), b = learn_pattern(7, 2, true);
  CHECK(a.front() > 1.5f);
  CHECK(a.back() < 0.05f);
  CHECK(a == b);
  CHECK(a != learn_pattern(7, 1, false));
}

TEST_CASE("GPT: the KV cache gives the full forward pass's logits at every position") {
  // Heads 8 wide (the vector path where vectors are 8 or 4 floats, the scalar one with AVX-512)
  // and 16 wide (the vector path at every width); a context past one block of 4 vectors.
  for (int64_t embd : {16, 32}) {
    CAPTURE(embd);
    const int64_t T = 70;
    Gpt model({.vocab = 11, .context = T, .layers = 2, .heads = 2, .embd = embd});
    Rng rng(9);
    model.init(rng);
    for (size_t i = 0; i < model.params().size(); ++i) model.params().values()[i] += 0.2f * rng.normal();
    std::vector<uint32_t> ids(static_cast<size_t>(T));
    for (auto& id : ids) id = static_cast<uint32_t>(rng.uniform() * 11) % 11;
    Arena arena;
    Graph g(arena, false);
    Tensor full = model.logits(g, ids.data(), 1, T);
    GptCache cache = model.make_cache();
    double worst = 0;
    for (int64_t t = 0; t < T; ++t) {
      const std::vector<float>& step = model.step(cache, ids[static_cast<size_t>(t)]);
      for (int64_t v = 0; v < 11; ++v)
        worst = std::max(worst, std::abs(static_cast<double>(step[v]) - full.data[t * 11 + v]));
    }
    CHECK(worst < 1e-4);
    CHECK(cache.length == T);
    CHECK_THROWS_AS(model.step(cache, 0), Error);
  }
}

// Many tokens in one step (a prompt, a refilled window) give the logits and the cache that one
// step per token gives, to the bit: the rows share the products, each row summed as alone.
TEST_CASE("Gpt::step: n tokens at once are n steps, to the bit") {
  for (int64_t embd : {16, 32, 36}) {  // the vector path at every width, the scalar one, odd widths
    CAPTURE(embd);
    const int64_t T = 40;
    Gpt model({.vocab = 13, .context = T, .layers = 2, .heads = embd == 36 ? 3 : 2, .embd = embd});
    Rng rng(5);
    model.init(rng);
    for (size_t i = 0; i < model.params().size(); ++i) model.params().values()[i] += 0.2f * rng.normal();
    std::vector<uint32_t> ids(static_cast<size_t>(T));
    for (auto& id : ids) id = static_cast<uint32_t>(rng.uniform() * 13) % 13;
    GptCache one = model.make_cache(), many = model.make_cache();
    int64_t t = 0;
    for (int64_t n : {1, 4, 7, 3, 9, 1, 2, 13}) {  // 40 in all
      CAPTURE(t);
      CAPTURE(n);
      std::vector<float> expected;
      for (int64_t i = 0; i < n; ++i) expected = model.step(one, ids[static_cast<size_t>(t + i)]);
      const std::vector<float>& got = model.step(many, ids.data() + t, n);
      t += n;
      CHECK(many.length == t);
      CHECK(std::equal(expected.begin(), expected.end(), got.begin()));
    }
    CHECK(one.k == many.k);
    CHECK(one.v == many.v);
    CHECK_THROWS_AS(model.step(many, ids.data(), 1), Error);
    GptCache fresh = model.make_cache();
    CHECK_THROWS_AS(model.step(fresh, ids.data(), T + 1), Error);
    CHECK_THROWS_AS(model.step(fresh, ids.data(), 0), Error);
  }
}

// From 128 wide a step runs on every thread (one region: each product's outputs, the
// attention's (row, head) pairs and the GELU shared out); the logits and the cache are those of
// one thread, to the bit: heads 32 wide (the vector path) and 44 (the scalar one with AVX-512 and
// AVX2), one token at a time and several (32: a window's refill), on 2, 3 and 4 threads (a
// thread with no block of a product: 128 outputs are 2 blocks with AVX-512).
TEST_CASE("Gpt::step: two, three and four threads give one thread's bits") {
  const int saved_threads = omp_get_max_threads();
  for (auto [embd, heads] : {std::pair<int64_t, int64_t>{128, 4}, {132, 3}}) {
    CAPTURE(embd);
    const int64_t T = 64;
    Gpt model({.vocab = 70, .context = T, .layers = 2, .heads = heads, .embd = embd});
    Rng rng(12);
    model.init(rng);
    for (size_t i = 0; i < model.params().size(); ++i) model.params().values()[i] += 0.1f * rng.normal();
    std::vector<uint32_t> ids(static_cast<size_t>(T));
    for (auto& id : ids) id = static_cast<uint32_t>(rng.uniform() * 70) % 70;
    const int counts[] = {1, 2, 3, 4};
    std::vector<GptCache> caches;
    for (size_t i = 0; i < std::size(counts); ++i) caches.push_back(model.make_cache());
    int64_t t = 0;
    for (int64_t n : {1, 5, 1, 1, 16, 32}) {  // 56 in all
      CAPTURE(n);
      std::vector<float> first;
      for (size_t i = 0; i < std::size(counts); ++i) {
        CAPTURE(counts[i]);
        omp_set_num_threads(counts[i]);
        const std::vector<float>& logits = model.step(caches[i], ids.data() + t, n);
        if (i == 0)
          first = logits;
        else
          CHECK(logits == first);
      }
      t += n;
    }
    for (size_t i = 1; i < std::size(counts); ++i) {
      CHECK(caches[i].k == caches[0].k);
      CHECK(caches[i].v == caches[0].v);
    }
  }
  omp_set_num_threads(saved_threads);
}

// The sampler without filters skips sorting the vocabulary; its distribution must still be the
// one the sorted renormalization gives, to the bit (the same seed gives the same text).
TEST_CASE("Sampler: without filters, the distribution of the sorted path, to the bit") {
  auto sorted_path = [](std::vector<float> p) {
    std::vector<uint32_t> order(p.size());
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return p[a] > p[b]; });
    double sum = 0;
    for (uint32_t v : order) sum += p[v];
    for (auto& x : p) x = static_cast<float>(x / sum);
    return p;
  };
  Rng rng(11);
  int cases = 0;
  for (size_t vocab : {size_t{1}, size_t{5}, size_t{68}, size_t{1000}, size_t{50257}}) {
    for (float spread : {0.5f, 4.0f, 20.0f, 60.0f}) {  // wide spreads: many tiny probabilities, some zero
      for (float temperature : {0.7f, 1.0f, 1.6f}) {
        std::vector<float> logits(vocab);
        for (auto& x : logits) x = spread * rng.normal();
        if (vocab > 4) {
          logits[1] = logits[3];  // a tie
          logits[2] = -INFINITY;  // a token that can never come
        }
        Sampler sampler({.temperature = temperature}, 1);
        std::vector<float> ours = sampler.distribution(logits, {});
        std::vector<float> expected = sorted_path(Sampler::softmax(logits, temperature));
        REQUIRE(ours.size() == expected.size());
        CHECK(std::memcmp(ours.data(), expected.data(), ours.size() * sizeof(float)) == 0);
        ++cases;
      }
    }
  }
  CHECK(cases == 60);
}

TEST_CASE("ZeroedFloats: small and large blocks are zero and 64-byte aligned; large ones 2 MiB aligned; moves") {
  for (size_t count : {size_t{1}, size_t{1000}, size_t{524288}, size_t{3000000}}) {
    CAPTURE(count);
    ZeroedFloats z(count);
    REQUIRE(z.size() == count);
    CHECK(reinterpret_cast<uintptr_t>(z.data()) % 64 == 0);
    bool zero = true;
    for (float x : z) zero = zero && x == 0.0f;
    CHECK(zero);
    z.data()[count - 1] = 7.0f;  // the last float is writable
    ZeroedFloats moved = std::move(z);
    CHECK(z.empty());
    CHECK(moved.size() == count);
    CHECK(moved.data()[count - 1] == 7.0f);
    moved.assign_zeros(count / 2 + 1);
    CHECK(moved.data()[count / 2] == 0.0f);
  }
}

TEST_CASE("Gpt built on a checkpoint's weights takes them as they are, without a copy") {
  GptConfig c{13, 8, 2, 2, 16};
  Gpt a(c);
  Rng rng(3);
  a.init(rng);
  ZeroedFloats weights(a.params().size());
  std::copy(a.params().values(), a.params().values() + a.params().size(), weights.data());
  const float* where = weights.data();
  Gpt b(c, std::move(weights));
  CHECK(b.params().values() == where);
  CHECK(std::equal(a.params().values(), a.params().values() + a.params().size(), b.params().values()));
  CHECK_THROWS_AS(Gpt(c, ZeroedFloats(a.params().size() + 1)), std::logic_error);
}
