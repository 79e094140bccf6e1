// Finite-difference gradient checks for the image layers (tensor/conv.h), in double precision,
// as in test_kernels.cpp: L = sum(out * r), dout = r.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "gradcheck.h"
#include "tensor/conv.h"

using namespace gen;
using namespace gen::test;

namespace {

// A direct convolution, for checking im2col + GEMM.
Vec naive_conv(const Vec& inp, const Vec& w, const Vec& b, const nn::ConvShape& s) {
  Vec out(static_cast<size_t>(s.B * s.OC * s.OH() * s.OW()));
  for (int64_t n = 0; n < s.B; ++n)
    for (int64_t o = 0; o < s.OC; ++o)
      for (int64_t oy = 0; oy < s.OH(); ++oy)
        for (int64_t ox = 0; ox < s.OW(); ++ox) {
          double sum = b.empty() ? 0 : b[static_cast<size_t>(o)];
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t ky = 0; ky < s.K; ++ky)
              for (int64_t kx = 0; kx < s.K; ++kx) {
                int64_t y = oy * s.stride + ky - s.pad, x = ox * s.stride + kx - s.pad;
                if (y < 0 || y >= s.H || x < 0 || x >= s.W) continue;
                sum += inp[static_cast<size_t>(((n * s.C + c) * s.H + y) * s.W + x)] *
                       w[static_cast<size_t>(((o * s.C + c) * s.K + ky) * s.K + kx)];
              }
          out[static_cast<size_t>(((n * s.OC + o) * s.OH() + oy) * s.OW() + ox)] = sum;
        }
  return out;
}

// The same sums' gradients, directly: dinp and dw of L = sum(out * r) (the bias's is r's sum).
void naive_conv_gradients(Vec& dinp, Vec& dw, const Vec& inp, const Vec& w, const Vec& r, const nn::ConvShape& s) {
  dinp.assign(inp.size(), 0.0);
  dw.assign(w.size(), 0.0);
  for (int64_t n = 0; n < s.B; ++n)
    for (int64_t o = 0; o < s.OC; ++o)
      for (int64_t oy = 0; oy < s.OH(); ++oy)
        for (int64_t ox = 0; ox < s.OW(); ++ox) {
          const double g = r[static_cast<size_t>(((n * s.OC + o) * s.OH() + oy) * s.OW() + ox)];
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t ky = 0; ky < s.K; ++ky)
              for (int64_t kx = 0; kx < s.K; ++kx) {
                int64_t y = oy * s.stride + ky - s.pad, x = ox * s.stride + kx - s.pad;
                if (y < 0 || y >= s.H || x < 0 || x >= s.W) continue;
                const auto i = static_cast<size_t>(((n * s.C + c) * s.H + y) * s.W + x);
                const auto k = static_cast<size_t>(((o * s.C + c) * s.K + ky) * s.K + kx);
                dinp[i] += g * w[k];
                dw[k] += g * inp[i];
              }
        }
}

void check_conv(const nn::ConvShape& s, uint64_t seed) {
  CAPTURE(s.K);
  CAPTURE(s.stride);
  CAPTURE(s.pad);
  Rng rng(seed);
  Vec inp = random_vector(static_cast<size_t>(s.B * s.C * s.H * s.W), rng);
  Vec w = random_vector(static_cast<size_t>(s.OC * s.C * s.K * s.K), rng), b = random_vector(static_cast<size_t>(s.OC), rng);
  Vec r = random_vector(static_cast<size_t>(s.B * s.OC * s.OH() * s.OW()), rng), out(r.size());
  auto loss = [&] {
    nn::conv2d_forward(out.data(), inp.data(), w.data(), b.data(), s);
    return dot(out, r);
  };
  loss();
  Vec expected = naive_conv(inp, w, b, s);
  for (size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == doctest::Approx(expected[i]).epsilon(1e-12));
  Vec dinp(inp.size()), dw(w.size()), db(b.size());
  nn::conv2d_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), s);
  // The loss is linear in each (a larger step: with 16 channels and more, rounding in the
  // larger sums came near the tolerance at 1e-6).
  check_gradient("conv input", inp, dinp, loss, 1e-3);
  check_gradient("conv weight", w, dw, loss, 1e-3);
  check_gradient("conv bias", b, db, loss, 1e-3);
  // Told to overwrite, the input gradient replaces what was there (the tape's first writer).
  Vec over(inp.size(), 7.0);
  nn::conv2d_backward<double>(over.data(), nullptr, nullptr, r.data(), inp.data(), w.data(), s, true);
  for (size_t i = 0; i < over.size(); ++i) REQUIRE(over[i] == doctest::Approx(dinp[i]).epsilon(1e-12));
}

}  // namespace

TEST_CASE("conv2d: matches a direct convolution; gradients of input, weight and bias") {
  check_conv({.B = 2, .C = 3, .H = 5, .W = 6, .OC = 4, .K = 3, .stride = 1, .pad = 1}, 11);  // same size
  check_conv({.B = 3, .C = 2, .H = 7, .W = 7, .OC = 3, .K = 3, .stride = 2, .pad = 1}, 12);  // downsampling
  check_conv({.B = 2, .C = 5, .H = 4, .W = 3, .OC = 2, .K = 1, .stride = 1, .pad = 0}, 13);  // pointwise
  check_conv({.B = 1, .C = 2, .H = 6, .W = 5, .OC = 2, .K = 4, .stride = 2, .pad = 1}, 14);  // DCGAN's 4x4
  check_conv({.B = 2, .C = 1, .H = 1, .W = 1, .OC = 2, .K = 3, .stride = 1, .pad = 1}, 15);  // all padding
  // Small images go several to a GEMM (4 + 1 here); the input gradient of a stride-1
  // convolution is a convolution with the kernel flipped (padding K - 1 - pad: 1, then 2).
  check_conv({.B = 5, .C = 3, .H = 3, .W = 3, .OC = 4, .K = 3, .stride = 1, .pad = 1}, 18);
  check_conv({.B = 3, .C = 2, .H = 5, .W = 4, .OC = 3, .K = 3, .stride = 1, .pad = 0}, 19);
  // Images of 14x14 and up: one product per kernel row over rows shifted by each kernel column.
  check_conv({.B = 2, .C = 2, .H = 14, .W = 15, .OC = 3, .K = 3, .stride = 1, .pad = 1}, 20);
  check_conv({.B = 1, .C = 2, .H = 16, .W = 14, .OC = 2, .K = 5, .stride = 1, .pad = 2}, 21);
  // 3x3 between 16 channels and more: Winograd's F(2x2, 3x3), odd and even sizes (the input
  // gradient too: the flipped kernel, channels swapped).
  check_conv({.B = 2, .C = 16, .H = 13, .W = 16, .OC = 17, .K = 3, .stride = 1, .pad = 1}, 22);
  check_conv({.B = 1, .C = 16, .H = 14, .W = 15, .OC = 16, .K = 3, .stride = 1, .pad = 1}, 23);
}

// The float kernels (vectorized im2col, kernel rows, several images to a product, windows
// picked in registers, stride 2's column phases, channels in chunks, Winograd's tiles whole
// images or a few rows at a time) against the double ones and against direct sums.
TEST_CASE("conv2d in float: forward, input and weight gradients match double precision") {
  const nn::ConvShape shapes[] = {
      {.B = 3, .C = 5, .H = 28, .W = 28, .OC = 4, .K = 3, .stride = 1, .pad = 1},  // kernel rows
      {.B = 4, .C = 6, .H = 14, .W = 14, .OC = 5, .K = 3, .stride = 1, .pad = 1},  // kernel rows
      {.B = 9, .C = 7, .H = 7, .W = 7, .OC = 6, .K = 3, .stride = 1, .pad = 1},    // im2col, 8 + 1 images
      {.B = 3, .C = 4, .H = 14, .W = 14, .OC = 3, .K = 4, .stride = 2, .pad = 1},  // strided
      // Channels in chunks of 16 (4x4) and 28 (3x3): 16 + 4, 28 + 2.
      {.B = 3, .C = 20, .H = 14, .W = 13, .OC = 3, .K = 4, .stride = 2, .pad = 1},
      {.B = 5, .C = 30, .H = 7, .W = 7, .OC = 4, .K = 3, .stride = 1, .pad = 1},
      // Stride 2 with odd sizes, no padding, wider padding, rows wider than a vector (the
      // input gradient's image rows in several vectors; windows copied a row at a time).
      {.B = 2, .C = 3, .H = 7, .W = 9, .OC = 2, .K = 3, .stride = 2, .pad = 1},
      {.B = 2, .C = 2, .H = 10, .W = 11, .OC = 3, .K = 4, .stride = 2, .pad = 0},
      {.B = 2, .C = 2, .H = 9, .W = 12, .OC = 2, .K = 5, .stride = 2, .pad = 2},
      {.B = 2, .C = 2, .H = 9, .W = 70, .OC = 3, .K = 4, .stride = 2, .pad = 1},
      {.B = 2, .C = 3, .H = 28, .W = 28, .OC = 4, .K = 4, .stride = 2, .pad = 1},
      // Stride 3: the phases' generic path.
      {.B = 2, .C = 3, .H = 10, .W = 11, .OC = 2, .K = 3, .stride = 3, .pad = 1},
      // Winograd: several images to a product (14x14: 49 tiles, 8 + 1 images; two to a vector of
      // tiles), one (28x28), odd sizes, rows of tiles wider than a vector (W 70: 35 tiles), rows
      // of 4 tiles (28x8: three images to a vector, 3 + 3 + 2, then 1).
      {.B = 9, .C = 16, .H = 28, .W = 8, .OC = 20, .K = 3, .stride = 1, .pad = 1},
      {.B = 9, .C = 16, .H = 14, .W = 14, .OC = 24, .K = 3, .stride = 1, .pad = 1},
      {.B = 2, .C = 16, .H = 28, .W = 28, .OC = 16, .K = 3, .stride = 1, .pad = 1},
      {.B = 3, .C = 20, .H = 15, .W = 13, .OC = 16, .K = 3, .stride = 1, .pad = 1},
      {.B = 2, .C = 16, .H = 5, .W = 70, .OC = 18, .K = 3, .stride = 1, .pad = 1},
      {.B = 3, .C = 40, .H = 23, .W = 21, .OC = 40, .K = 3, .stride = 1, .pad = 1},  // 12 x 11 tiles, 2 + 1 images
      {.B = 2, .C = 16, .H = 48, .W = 47, .OC = 20, .K = 3, .stride = 1, .pad = 1},  // 24 x 24 tiles: rows 21 + 3
  };
  uint64_t seed = 30;
  for (const auto& s : shapes) {
    CAPTURE(s.H);
    CAPTURE(s.K);
    Rng rng(seed++);
    Vec inp = random_vector(static_cast<size_t>(s.B * s.C * s.H * s.W), rng);
    Vec w = random_vector(static_cast<size_t>(s.OC * s.C * s.K * s.K), rng);
    Vec b = random_vector(static_cast<size_t>(s.OC), rng);
    Vec r = random_vector(static_cast<size_t>(s.B * s.OC * s.OH() * s.OW()), rng);
    auto to_float = [](const Vec& v) { return std::vector<float>(v.begin(), v.end()); };
    std::vector<float> inp_f = to_float(inp), w_f = to_float(w), b_f = to_float(b), r_f = to_float(r);
    Vec out(r.size()), dinp(inp.size()), dw(w.size()), db(b.size());
    std::vector<float> out_f(r.size()), dinp_f(inp.size()), dw_f(w.size()), db_f(b.size());
    nn::conv2d_forward(out.data(), inp.data(), w.data(), b.data(), s);
    nn::conv2d_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), s);
    nn::conv2d_forward(out_f.data(), inp_f.data(), w_f.data(), b_f.data(), s);
    nn::conv2d_backward(dinp_f.data(), dw_f.data(), db_f.data(), r_f.data(), inp_f.data(), w_f.data(), s);
    auto close = [](const char* what, const std::vector<float>& got, const Vec& want) {
      CAPTURE(what);
      for (size_t i = 0; i < want.size(); ++i) REQUIRE(got[i] == doctest::Approx(want[i]).epsilon(1e-4).scale(1));
    };
    close("output", out_f, out);
    close("input gradient", dinp_f, dinp);
    close("weight gradient", dw_f, dw);
    close("bias gradient", db_f, db);
    // And the double path against the direct sums (the shapes above are too large for
    // finite differences).
    const Vec direct = naive_conv(inp, w, b, s);
    Vec dinp_direct, dw_direct;
    naive_conv_gradients(dinp_direct, dw_direct, inp, w, r, s);
    for (size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == doctest::Approx(direct[i]).epsilon(1e-12));
    for (size_t i = 0; i < dinp.size(); ++i) REQUIRE(dinp[i] == doctest::Approx(dinp_direct[i]).epsilon(1e-12));
    for (size_t i = 0; i < dw.size(); ++i) REQUIRE(dw[i] == doctest::Approx(dw_direct[i]).epsilon(1e-12));
  }
}

TEST_CASE("conv2d_inference: the composed layers' output, in double and float, on every path") {
  // conv2d(groupnorm_silu(x)) + per_image + plus, against groupnorm_silu_forward,
  // conv2d_forward and the additions one by one: kernel rows (28x28, 14x14), several images
  // to a product with a remainder (7x7, 9 images), pointwise, strided, and without the
  // normalization.
  const nn::ConvShape shapes[] = {
      {.B = 3, .C = 8, .H = 28, .W = 28, .OC = 4, .K = 3, .stride = 1, .pad = 1},
      {.B = 2, .C = 4, .H = 14, .W = 14, .OC = 6, .K = 3, .stride = 1, .pad = 1},
      {.B = 9, .C = 8, .H = 7, .W = 7, .OC = 5, .K = 3, .stride = 1, .pad = 1},
      {.B = 2, .C = 4, .H = 6, .W = 6, .OC = 3, .K = 1, .stride = 1, .pad = 0},
      {.B = 3, .C = 4, .H = 14, .W = 14, .OC = 3, .K = 3, .stride = 2, .pad = 1},
      {.B = 5, .C = 32, .H = 7, .W = 7, .OC = 3, .K = 3, .stride = 1, .pad = 1},  // channels in chunks: 28 + 4
      {.B = 9, .C = 16, .H = 14, .W = 14, .OC = 16, .K = 3, .stride = 1, .pad = 1},  // Winograd, 8 + 1 images
      {.B = 9, .C = 16, .H = 28, .W = 7, .OC = 16, .K = 3, .stride = 1, .pad = 1},   // Winograd, 3 to a vector
      {.B = 2, .C = 16, .H = 14, .W = 15, .OC = 20, .K = 3, .stride = 1, .pad = 1},
  };
  const int64_t G = 2;
  uint64_t seed = 60;
  for (const auto& s : shapes)
    for (bool normalized : {true, false}) {
      CAPTURE(s.H);
      CAPTURE(s.K);
      CAPTURE(normalized);
      Rng rng(seed++);
      const int64_t HW = s.H * s.W, P = s.OH() * s.OW();
      Vec inp = random_vector(static_cast<size_t>(s.B * s.C * HW), rng);
      Vec w = random_vector(static_cast<size_t>(s.OC * s.C * s.K * s.K), rng), b = random_vector(static_cast<size_t>(s.OC), rng);
      Vec gw = random_vector(static_cast<size_t>(s.C), rng), gb = random_vector(static_cast<size_t>(s.C), rng);
      Vec per_image = random_vector(static_cast<size_t>(s.B * s.OC), rng);
      Vec plus = random_vector(static_cast<size_t>(s.B * s.OC * P), rng);
      // The composed layers, in double.
      Vec normed = inp, mean(static_cast<size_t>(s.B * G)), rstd(mean.size()), want(plus.size());
      if (normalized)
        nn::groupnorm_silu_forward(normed.data(), mean.data(), rstd.data(), inp.data(), gw.data(), gb.data(), s.B, s.C,
                                   HW, G);
      nn::conv2d_forward(want.data(), normed.data(), w.data(), b.data(), s);
      for (int64_t i = 0; i < s.B * s.OC * P; ++i) want[static_cast<size_t>(i)] += per_image[static_cast<size_t>(i / P)] + plus[static_cast<size_t>(i)];
      Vec got(want.size());
      nn::conv2d_inference(got.data(), inp.data(), w.data(), b.data(), s, per_image.data(), plus.data(),
                           normalized ? gw.data() : nullptr, gb.data(), G);
      for (size_t i = 0; i < want.size(); ++i) REQUIRE(got[i] == doctest::Approx(want[i]).epsilon(1e-12).scale(1));
      auto to_float = [](const Vec& v) { return std::vector<float>(v.begin(), v.end()); };
      std::vector<float> inp_f = to_float(inp), w_f = to_float(w), b_f = to_float(b), gw_f = to_float(gw),
                         gb_f = to_float(gb), pi_f = to_float(per_image), plus_f = to_float(plus), got_f(want.size());
      nn::conv2d_inference(got_f.data(), inp_f.data(), w_f.data(), b_f.data(), s, pi_f.data(), plus_f.data(),
                           normalized ? gw_f.data() : nullptr, gb_f.data(), G);
      for (size_t i = 0; i < want.size(); ++i) REQUIRE(got_f[i] == doctest::Approx(want[i]).epsilon(1e-4).scale(1));
      // Nothing added but the bias: conv2d_forward's own output.
      nn::conv2d_inference(got.data(), inp.data(), w.data(), b.data(), s, static_cast<const double*>(nullptr),
                           static_cast<const double*>(nullptr));
      Vec plain(want.size());
      nn::conv2d_forward(plain.data(), inp.data(), w.data(), b.data(), s);
      for (size_t i = 0; i < want.size(); ++i) REQUIRE(got[i] == doctest::Approx(plain[i]).epsilon(1e-12).scale(1));
    }
}

TEST_CASE("conv_transpose2d: the adjoint of conv2d; doubles the size; gradients") {
  // DCGAN's upsampling: 4x4 kernel, stride 2, padding 1 turns 7x7 into 14x14.
  CHECK(nn::conv_transpose_size(7, 4, 2, 1) == 14);
  nn::ConvShape s{.B = 2, .C = 3, .H = 3, .W = 4, .OC = 2, .K = 4, .stride = 2, .pad = 1};
  const int64_t OH = nn::conv_transpose_size(s.H, s.K, 2, 1), OW = nn::conv_transpose_size(s.W, s.K, 2, 1);
  Rng rng(16);
  Vec inp = random_vector(static_cast<size_t>(s.B * s.C * s.H * s.W), rng);
  Vec w = random_vector(static_cast<size_t>(s.C * s.OC * s.K * s.K), rng), b = random_vector(static_cast<size_t>(s.OC), rng);
  Vec r = random_vector(static_cast<size_t>(s.B * s.OC * OH * OW), rng), out(r.size());
  auto loss = [&] {
    nn::conv_transpose2d_forward(out.data(), inp.data(), w.data(), b.data(), s);
    return dot(out, r);
  };
  // <convT(x), y> = <x, conv(y)> with the same weights (no bias): the defining property.
  Vec none;
  nn::conv_transpose2d_forward<double>(out.data(), inp.data(), w.data(), nullptr, s);
  Vec back = naive_conv(r, w, none, {.B = s.B, .C = s.OC, .H = OH, .W = OW, .OC = s.C, .K = s.K, .stride = 2, .pad = 1});
  CHECK(dot(out, r) == doctest::Approx(dot(inp, back)).epsilon(1e-12));
  loss();
  Vec dinp(inp.size()), dw(w.size()), db(b.size());
  nn::conv_transpose2d_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), s);
  check_gradient("convT input", inp, dinp, loss);
  check_gradient("convT weight", w, dw, loss);
  check_gradient("convT bias", b, db, loss);
  Vec over(inp.size(), 7.0);
  nn::conv_transpose2d_backward<double>(over.data(), nullptr, nullptr, r.data(), inp.data(), w.data(), s, true);
  for (size_t i = 0; i < over.size(); ++i) REQUIRE(over[i] == doctest::Approx(dinp[i]).epsilon(1e-12));
}

TEST_CASE("groupnorm: normalizes each group; gradients of input, weight and bias") {
  Rng rng(17);
  const int64_t B = 2, C = 6, HW = 5, G = 3;
  Vec inp = random_vector(B * C * HW, rng, 2.0), w = random_vector(C, rng), b = random_vector(C, rng);
  for (auto& x : inp) x += 1.5;  // a mean to remove
  Vec r = random_vector(B * C * HW, rng), out(B * C * HW), mean(B * G), rstd(B * G);
  auto loss = [&] {
    nn::groupnorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), B, C, HW, G);
    return dot(out, r);
  };
  Vec ones(C, 1.0), zeros(C, 0.0);
  nn::groupnorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), ones.data(), zeros.data(), B, C, HW, G);
  const int64_t n = C / G * HW;  // one group: two channels of one image
  double m = 0, v = 0;
  for (int64_t i = 0; i < n; ++i) m += out[n + i] / n;
  for (int64_t i = 0; i < n; ++i) v += (out[n + i] - m) * (out[n + i] - m) / n;
  CHECK(std::abs(m) < 1e-12);
  CHECK(v == doctest::Approx(1.0).epsilon(1e-4));
  loss();
  Vec dinp(inp.size()), dw(C), db(C);
  nn::groupnorm_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), mean.data(), rstd.data(),
                         B, C, HW, G);
  check_gradient("input", inp, dinp, loss);
  check_gradient("weight", w, dw, loss);
  check_gradient("bias", b, db, loss);
  Vec over(inp.size(), 7.0);
  nn::groupnorm_backward<double>(over.data(), nullptr, nullptr, r.data(), inp.data(), w.data(), mean.data(),
                                 rstd.data(), B, C, HW, G, true);
  CHECK(over == dinp);
}

TEST_CASE("groupnorm_silu: silu(groupnorm(x)) in one pass; gradients of input, weight and bias") {
  Rng rng(21);
  const int64_t B = 3, C = 4, HW = 37, G = 2;  // 37: the 16-lane sums' main loop and a remainder
  Vec inp = random_vector(B * C * HW, rng, 2.0), w = random_vector(C, rng), b = random_vector(C, rng);
  Vec r = random_vector(B * C * HW, rng), out(B * C * HW), mean(B * G), rstd(B * G);
  auto loss = [&] {
    nn::groupnorm_silu_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), B, C, HW, G);
    return dot(out, r);
  };
  loss();
  Vec norm(out.size()), expected(out.size()), mean2(B * G), rstd2(B * G);
  nn::groupnorm_forward(norm.data(), mean2.data(), rstd2.data(), inp.data(), w.data(), b.data(), B, C, HW, G);
  nn::silu_forward(expected.data(), norm.data(), static_cast<int64_t>(norm.size()));
  for (size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == doctest::Approx(expected[i]).epsilon(1e-12));
  Vec dinp(inp.size()), dw(C), db(C);
  nn::groupnorm_silu_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), b.data(),
                              mean.data(), rstd.data(), B, C, HW, G);
  check_gradient("input", inp, dinp, loss);
  check_gradient("weight", w, dw, loss);
  check_gradient("bias", b, db, loss);
  // Without an input gradient, the same dw and db.
  Vec dw2(C), db2(C);
  nn::groupnorm_silu_backward<double>(nullptr, dw2.data(), db2.data(), r.data(), inp.data(), w.data(), b.data(),
                                      mean.data(), rstd.data(), B, C, HW, G);
  CHECK(dw2 == dw);
  CHECK(db2 == db);
  Vec over(inp.size(), 7.0);
  nn::groupnorm_silu_backward<double>(over.data(), nullptr, nullptr, r.data(), inp.data(), w.data(), b.data(),
                                      mean.data(), rstd.data(), B, C, HW, G, true);
  CHECK(over == dinp);
}

TEST_CASE("silu, upsampling, per-channel add, concatenation, gather: gradients") {
  Rng rng(18);
  const int64_t B = 2, C = 3, H = 2, W = 3, HW = H * W;
  Vec x = random_vector(B * C * HW, rng, 2.0), r, out;

  r = random_vector(x.size(), rng), out.assign(x.size(), 0);
  auto silu = [&] {
    nn::silu_forward(out.data(), x.data(), static_cast<int64_t>(x.size()));
    return dot(out, r);
  };
  silu();
  CHECK(out[0] == doctest::Approx(x[0] / (1 + std::exp(-x[0]))));
  Vec dx(x.size());
  nn::silu_backward(dx.data(), x.data(), r.data(), static_cast<int64_t>(x.size()));
  check_gradient("silu", x, dx, silu);

  r = random_vector(x.size() * 4, rng), out.assign(r.size(), 0);
  auto up = [&] {
    nn::upsample2x_forward(out.data(), x.data(), B * C, H, W);
    return dot(out, r);
  };
  up();
  CHECK(out[2 * W * 2 + 1] == x[W]);  // row 2, column 1 of the big image is row 1, column 0
  dx.assign(x.size(), 0);
  nn::upsample2x_backward(dx.data(), r.data(), B * C, H, W);
  check_gradient("upsample", x, dx, up);

  Vec e = random_vector(B * C, rng);
  r = random_vector(x.size(), rng), out.assign(x.size(), 0);
  auto add = [&] {
    nn::add_channels_forward(out.data(), x.data(), e.data(), B, C, HW);
    return dot(out, r);
  };
  dx.assign(x.size(), 0);
  Vec de(e.size());
  nn::add_channels_backward(dx.data(), de.data(), r.data(), B, C, HW);
  check_gradient("add x", x, dx, add);
  check_gradient("add e", e, de, add);

  const int64_t C2 = 2;
  Vec y = random_vector(B * C2 * HW, rng);
  r = random_vector(x.size() + y.size(), rng), out.assign(r.size(), 0);
  auto cat = [&] {
    nn::concat_channels_forward(out.data(), x.data(), y.data(), B, C, C2, HW);
    return dot(out, r);
  };
  cat();
  CHECK(out[(C + C2) * HW] == x[C * HW]);  // image 1 starts with x's image 1
  dx.assign(x.size(), 0);
  Vec dy(y.size());
  nn::concat_channels_backward(dx.data(), dy.data(), r.data(), B, C, C2, HW);
  check_gradient("concat a", x, dx, cat);
  check_gradient("concat b", y, dy, cat);

  Vec table = random_vector(4 * 3, rng);
  std::vector<uint32_t> ids = {2, 0, 2};
  r = random_vector(3 * 3, rng), out.assign(r.size(), 0);
  auto gather = [&] {
    nn::gather_rows_forward(out.data(), table.data(), ids.data(), 3, 3);
    return dot(out, r);
  };
  Vec dtable(table.size());
  nn::gather_rows_backward(dtable.data(), r.data(), ids.data(), 3, 3);
  check_gradient("gather", table, dtable, gather);
}

TEST_CASE("mse: value and gradient; timestep embedding") {
  Rng rng(19);
  Vec pred = random_vector(20, rng), target = random_vector(20, rng);
  auto loss = [&] { return 3.0 * nn::mse_forward(pred.data(), target.data(), 20); };
  double expected = 0;
  for (size_t i = 0; i < 20; ++i) expected += (pred[i] - target[i]) * (pred[i] - target[i]) / 20;
  CHECK(nn::mse_forward(pred.data(), target.data(), 20) == doctest::Approx(expected));
  Vec dpred(20);
  nn::mse_backward(dpred.data(), pred.data(), target.data(), 20, 3.0);
  check_gradient("mse", pred, dpred, loss);

  std::vector<float> t = {0, 10, 999}, e(3 * 8);
  nn::timestep_embedding(e.data(), t.data(), 3, 8);
  CHECK(e[0] == 0.0f);  // sin(0)
  CHECK(e[4] == 1.0f);  // cos(0)
  CHECK(e[8] == doctest::Approx(std::sin(10.0)));
  CHECK(e[8 + 7] == doctest::Approx(std::cos(10.0 * std::pow(10000.0, -3.0 / 4))));
}
