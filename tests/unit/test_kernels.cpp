// Finite-difference gradient checks for every layer kernel, in double precision so that the
// check is sharp: for L = sum(out * r) with a fixed random r, each input's gradient from the
// backward kernel (given dout = r) must match (L(x + h) - L(x - h)) / 2h.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

#include "core/rng.h"
#include "gradcheck.h"
#include "tensor/kernels.h"

using namespace gen;
using namespace gen::test;

TEST_CASE("linear: gradients of input, weight and bias; backward accumulates") {
  Rng rng(1);
  const int64_t N = 5, C = 7, OC = 3;
  Vec inp = random_vector(N * C, rng), w = random_vector(OC * C, rng), b = random_vector(OC, rng);
  Vec r = random_vector(N * OC, rng), out(N * OC);
  auto loss = [&] {
    nn::linear_forward(out.data(), inp.data(), w.data(), b.data(), N, C, OC);
    return dot(out, r);
  };
  loss();
  // A spot check of the forward itself.
  double expected = b[2];
  for (int64_t c = 0; c < C; ++c) expected += inp[1 * C + c] * w[2 * C + c];
  CHECK(out[1 * OC + 2] == doctest::Approx(expected).epsilon(1e-12));
  Vec dinp(N * C), dw(OC * C), db(OC);
  nn::linear_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), N, C, OC);
  check_gradient("input", inp, dinp, loss);
  check_gradient("weight", w, dw, loss);
  check_gradient("bias", b, db, loss);
  Vec twice = dw;
  nn::linear_backward<double>(nullptr, twice.data(), nullptr, r.data(), inp.data(), w.data(), N, C, OC);
  for (size_t i = 0; i < dw.size(); ++i) CHECK(twice[i] == doctest::Approx(2 * dw[i]));
}

// linear_rows_share (float, packed weights; generation's products) against linear_forward in
// double, and each output a chain of fused multiply-adds down C in order: the same bits for any N
// and any split into shares.
TEST_CASE("linear_rows_share: linear_forward's values from packed weights; the same bits for any number of rows") {
  Rng rng(3);
  for (int64_t C : {1, 7, 16, 33, 128}) {
    for (int64_t OC : {1, 5, 64, 70, 200}) {
      CAPTURE(C);
      CAPTURE(OC);
      const int64_t N = 9;
      Vec inp = random_vector(N * C, rng), w = random_vector(OC * C, rng), b = random_vector(OC, rng),
          residual = random_vector(N * OC, rng), expected(N * OC);
      nn::linear_forward(expected.data(), inp.data(), w.data(), b.data(), N, C, OC, residual.data());
      auto floats = [](const Vec& v) { return std::vector<float>(v.begin(), v.end()); };
      std::vector<float> fi = floats(inp), fw = floats(w), fb = floats(b), fr = floats(residual);
      std::vector<float> packed(static_cast<size_t>(nn::packed_rows_size(OC, C)), -1.0f);
      nn::pack_rows(packed.data(), fw.data(), OC, C);
      std::vector<float> all(static_cast<size_t>(N * OC));
      nn::linear_rows_share(all.data(), fi.data(), packed.data(), fb.data(), N, C, OC, fr.data(), 0, 1);
      // In three shares (some empty where there are fewer blocks): the same bits.
      std::vector<float> shared(all.size());
      for (int part = 0; part < 3; ++part)
        nn::linear_rows_share(shared.data(), fi.data(), packed.data(), fb.data(), N, C, OC, fr.data(), part, 3);
      CHECK(shared == all);
      double worst = 0;
      for (size_t i = 0; i < all.size(); ++i) worst = std::max(worst, std::abs(all[i] - expected[i]));
      CHECK(worst < 1e-5 * static_cast<double>(C + 1));
      // Row by row, in place on the residual, without a bias: the same bits as all rows at once less b.
      std::vector<float> rows = fr, none(static_cast<size_t>(N * OC));
      for (int64_t n = 0; n < N; ++n)
        nn::linear_rows_share(rows.data() + n * OC, fi.data() + n * C, packed.data(), nullptr, 1, C, OC,
                              rows.data() + n * OC, 0, 1);
      nn::linear_rows_share(none.data(), fi.data(), packed.data(), nullptr, N, C, OC, fr.data(), 0, 1);
      CHECK(rows == none);
#if defined(__FMA__)
      // Each output: residual + (a chain of fused multiply-adds down C from zero), to the bit.
      bool chains = true;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < OC; ++o) {
          float sum = 0;
          for (int64_t c = 0; c < C; ++c) sum = std::fma(fi[n * C + c], fw[o * C + c], sum);
          chains = chains && none[n * OC + o] == fr[n * OC + o] + sum;
        }
      CHECK(chains);
#endif
    }
  }
}

TEST_CASE("embedding: token and position gradients, repeated tokens add up") {
  Rng rng(2);
  const int64_t B = 2, T = 4, C = 3, V = 5;
  std::vector<uint32_t> ids = {1, 4, 1, 0, 3, 3, 2, 1};
  Vec wte = random_vector(V * C, rng), wpe = random_vector(T * C, rng), r = random_vector(B * T * C, rng);
  Vec out(B * T * C);
  auto loss = [&] {
    nn::embedding_forward(out.data(), ids.data(), wte.data(), wpe.data(), B, T, C);
    return dot(out, r);
  };
  Vec dwte(V * C), dwpe(T * C);
  nn::embedding_backward(dwte.data(), dwpe.data(), r.data(), ids.data(), B, T, C);
  check_gradient("wte", wte, dwte, loss);
  check_gradient("wpe", wpe, dwpe, loss);
}

TEST_CASE("layernorm: normalizes rows; gradients of input, weight and bias") {
  Rng rng(3);
  const int64_t N = 4, C = 6;
  Vec inp = random_vector(N * C, rng, 3.0), w = random_vector(C, rng), b = random_vector(C, rng);
  Vec r = random_vector(N * C, rng), out(N * C), mean(N), rstd(N);
  auto loss = [&] {
    nn::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N, C);
    return dot(out, r);
  };
  Vec ones(C, 1.0), zeros(C, 0.0);
  nn::layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), ones.data(), zeros.data(), N, C);
  double row_mean = 0, row_var = 0;
  for (int64_t i = 0; i < C; ++i) row_mean += out[i] / C;
  for (int64_t i = 0; i < C; ++i) row_var += (out[i] - row_mean) * (out[i] - row_mean) / C;
  CHECK(std::abs(row_mean) < 1e-12);
  CHECK(row_var == doctest::Approx(1.0).epsilon(1e-4));
  loss();
  Vec dinp(N * C), dw(C), db(C);
  nn::layernorm_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), mean.data(), rstd.data(),
                         N, C);
  check_gradient("input", inp, dinp, loss);
  check_gradient("weight", w, dw, loss);
  check_gradient("bias", b, db, loss);
}

TEST_CASE("gelu and residual: gradients") {
  Rng rng(4);
  const int64_t n = 50;
  Vec x = random_vector(n, rng, 2.0), y = random_vector(n, rng), r = random_vector(n, rng), out(n);
  auto gelu_loss = [&] {
    nn::gelu_forward(out.data(), x.data(), n);
    return dot(out, r);
  };
  gelu_loss();
  CHECK(out[0] == doctest::Approx(0.5 * x[0] * (1 + std::erf(x[0] / std::sqrt(2.0)))).epsilon(2e-3));
  Vec dx(n);
  nn::gelu_backward(dx.data(), x.data(), r.data(), n);
  check_gradient("gelu", x, dx, gelu_loss);

  auto residual_loss = [&] {
    nn::residual_forward(out.data(), x.data(), y.data(), n);
    return dot(out, r);
  };
  Vec da(n), db(n);
  nn::residual_backward(da.data(), db.data(), r.data(), n);
  check_gradient("residual a", x, da, residual_loss);
  check_gradient("residual b", y, db, residual_loss);
}

TEST_CASE("dropout: the share dropped, the scale of the rest, the mask from the key alone; gradient") {
  const int64_t n = 100000;
  const float p = 0.2f;
  Vec x(n, 1.0), out(n);
  nn::dropout_forward(out.data(), x.data(), n, p, 42);
  int64_t dropped = 0, misscaled = 0;
  const double scale = 1.0 / (1.0 - static_cast<double>(p));
  for (double v : out) {
    if (v == 0) ++dropped;
    else if (std::abs(v - scale) > 1e-12) ++misscaled;  // kept values are x / (1 - p)
  }
  CHECK(misscaled == 0);
  // A binomial share: 0.2 +- 3 standard deviations (0.0038).
  CHECK(std::abs(static_cast<double>(dropped) / n - p) < 0.004);
  CHECK(std::abs(std::accumulate(out.begin(), out.end(), 0.0) / n - 1.0) < 0.02);  // the mean kept
  // The same key, the same mask (element by element, whatever splits the work); another, another.
  Vec again(n), other(n);
  nn::dropout_forward(again.data(), x.data(), n, p, 42);
  nn::dropout_forward(other.data(), x.data(), n, p, 43);
  CHECK(again == out);
  CHECK(other != out);
  for (int64_t i : {0, 17, 99999}) CHECK((out[static_cast<size_t>(i)] != 0) == nn::dropout_keeps(42, i, p));
  // float against double: the same mask and values.
  std::vector<float> xf(n, 1.0f), outf(n);
  nn::dropout_forward(outf.data(), xf.data(), n, p, 42);
  for (int64_t i = 0; i < n; i += 997) CHECK(outf[static_cast<size_t>(i)] == doctest::Approx(out[static_cast<size_t>(i)]));
  // p = 0 keeps everything as it is.
  nn::dropout_forward(other.data(), x.data(), n, 0.0f, 42);
  CHECK(other == x);
  // The gradient: the same mask and scale, checked by finite differences.
  Rng rng(9);
  const int64_t m = 40;
  Vec y = random_vector(m, rng), r = random_vector(m, rng), o(m), dy(m);
  auto loss = [&] {
    nn::dropout_forward(o.data(), y.data(), m, 0.3f, 7);
    return dot(o, r);
  };
  nn::dropout_backward(dy.data(), r.data(), m, 0.3f, 7, true);
  check_gradient("dropout", y, dy, loss);
}

TEST_CASE("attention with dropout on its weights: gradient of qkv; p = 0 is plain attention") {
  Rng rng(15);
  const int64_t B = 2, T = 5, C = 8, NH = 2;
  Vec qkv = random_vector(B * T * 3 * C, rng), r = random_vector(B * T * C, rng);
  Vec out(B * T * C), plain(B * T * C), att(B * NH * T * T);
  nn::attention_forward(plain.data(), att.data(), qkv.data(), B, T, C, NH);
  nn::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH, true, 0.0f, 99);
  CHECK(out == plain);
  auto loss = [&] {
    nn::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH, true, 0.4f, 99);
    return dot(out, r);
  };
  loss();
  CHECK(out != plain);
  Vec dqkv(qkv.size());
  nn::attention_backward(dqkv.data(), r.data(), qkv.data(), att.data(), B, T, C, NH, true, true, 0.4f, 99);
  check_gradient("qkv", qkv, dqkv, loss);
}

TEST_CASE("attention: causal, rows sum to one, gradient of qkv") {
  Rng rng(5);
  const int64_t B = 2, T = 5, C = 8, NH = 2;
  Vec qkv = random_vector(B * T * 3 * C, rng), r = random_vector(B * T * C, rng);
  Vec out(B * T * C), att(B * NH * T * T);
  auto loss = [&] {
    nn::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    return dot(out, r);
  };
  loss();
  for (int64_t row = 0; row < B * NH * T; ++row) {
    int64_t t = row % T;
    double sum = 0;
    for (int64_t t2 = 0; t2 < T; ++t2) {
      if (t2 > t) CHECK(att[row * T + t2] == 0.0);
      sum += att[row * T + t2];
    }
    CHECK(sum == doctest::Approx(1.0));
  }
  // The first position attends only to itself: its output is its own v.
  for (int64_t i = 0; i < C; ++i) CHECK(out[i] == doctest::Approx(qkv[2 * C + i]));
  Vec dqkv(qkv.size());
  nn::attention_backward(dqkv.data(), r.data(), qkv.data(), att.data(), B, T, C, NH);
  check_gradient("qkv", qkv, dqkv, loss);
}

TEST_CASE("attention over every position (an image's pixels): rows sum to one, gradient of qkv") {
  Rng rng(6);
  const int64_t B = 2, T = 6, C = 8, NH = 2;
  Vec qkv = random_vector(B * T * 3 * C, rng), r = random_vector(B * T * C, rng);
  Vec out(B * T * C), att(B * NH * T * T);
  auto loss = [&] {
    nn::attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH, /*causal=*/false);
    return dot(out, r);
  };
  loss();
  for (int64_t row = 0; row < B * NH * T; ++row) {
    double sum = 0;
    for (int64_t t2 = 0; t2 < T; ++t2) {
      CHECK(att[row * T + t2] > 0.0);  // the first position sees the last, too
      sum += att[row * T + t2];
    }
    CHECK(sum == doctest::Approx(1.0));
  }
  Vec dqkv(qkv.size());
  nn::attention_backward(dqkv.data(), r.data(), qkv.data(), att.data(), B, T, C, NH, false, /*causal=*/false);
  check_gradient("qkv", qkv, dqkv, loss);
}

TEST_CASE("softmax cross-entropy: loss value and gradient of the logits") {
  Rng rng(6);
  const int64_t N = 4, V = 9;
  std::vector<uint32_t> targets = {0, 8, 3, 3};
  Vec logits = random_vector(N * V, rng, 3.0), r = random_vector(N, rng), loss_values(N), probs(N * V);
  auto loss = [&] {
    nn::softmax_cross_entropy_forward(loss_values.data(), probs.data(), logits.data(), targets.data(), N, V);
    return dot(loss_values, r);
  };
  loss();
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(logits[V + v]);
  CHECK(loss_values[1] == doctest::Approx(std::log(sum) - logits[V + 8]).epsilon(1e-12));
  CHECK(std::accumulate(probs.begin(), probs.begin() + V, 0.0) == doctest::Approx(1.0));
  Vec dlogits(N * V);
  nn::softmax_cross_entropy_backward(dlogits.data(), probs.data(), targets.data(), r.data(), N, V);
  check_gradient("logits", logits, dlogits, loss);
  // Huge logits stay finite.
  Vec big(V, 0.0);
  big[2] = 1000;
  Vec one_loss(1), one_probs(V);
  uint32_t target = 5;
  nn::softmax_cross_entropy_forward(one_loss.data(), one_probs.data(), big.data(), &target, 1, V);
  CHECK(one_loss[0] == doctest::Approx(1000.0));
}

// The tape overwrites a gradient at its first writer instead of zeroing it first: each kernel's
// overwrite must give exactly what adding to zeros gives, whatever the buffer held.
TEST_CASE("backward kernels: overwrite equals accumulating into zeros") {
  gen::Rng rng(11);
  const int64_t B = 2, T = 5, C = 8, NH = 2, N = B * T;
  auto random = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = rng.normal();
    return v;
  };
  auto check = [&](int64_t n, const std::function<void(float*, bool)>& backward) {
    std::vector<float> added(static_cast<size_t>(n), 0.0f), overwritten = random(n);
    backward(added.data(), false);
    backward(overwritten.data(), true);
    CHECK(added == overwritten);
  };
  auto x = random(N * C), w = random(C * C), dout = random(N * C), gain = random(C), mean = random(N);
  std::vector<float> rstd(static_cast<size_t>(N), 0.5f), dw(static_cast<size_t>(C * C)), db(static_cast<size_t>(C));
  check(N * C, [&](float* d, bool o) { gen::nn::linear_backward<float>(d, nullptr, nullptr, dout.data(), x.data(),
                                                                        w.data(), N, C, C, o); });
  check(N * C, [&](float* d, bool o) { gen::nn::layernorm_backward<float>(d, nullptr, nullptr, dout.data(), x.data(),
                                                                           gain.data(), mean.data(), rstd.data(), N,
                                                                           C, o); });
  check(N * C, [&](float* d, bool o) { gen::nn::gelu_backward<float>(d, x.data(), dout.data(), N * C, o); });
  check(N * C, [&](float* d, bool o) { gen::nn::residual_backward<float>(d, nullptr, dout.data(), N * C, o, false); });
  auto qkv = random(N * 3 * C);
  std::vector<float> att(static_cast<size_t>(B * NH * T * T)), out(static_cast<size_t>(N * C));
  gen::nn::attention_forward<float>(out.data(), att.data(), qkv.data(), B, T, C, NH);
  check(N * 3 * C, [&](float* d, bool o) { gen::nn::attention_backward<float>(d, dout.data(), qkv.data(), att.data(),
                                                                               B, T, C, NH, o); });
  std::vector<uint32_t> targets(static_cast<size_t>(N), 3);
  std::vector<float> dloss(static_cast<size_t>(N), 0.1f);
  check(N * C, [&](float* d, bool o) { gen::nn::softmax_cross_entropy_backward<float>(d, x.data(), targets.data(),
                                                                                      dloss.data(), N, C, o); });
}
