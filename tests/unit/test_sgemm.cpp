// gen::nn::sgemm against a naive double-precision product on the stored (strided) matrices: every
// transpose case, sizes on both sides of the micro-tile (12 x 32) and cache-block (depth 256,
// width 512) edges, leading dimensions past the width, alpha and beta variants. The gaps between
// rows hold NaN, so that a read past the width (or of C under beta = 0) shows in the result.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "tensor/kernels.h"
#include "tensor/blas.h"
#include "tensor/sgemm.h"

using namespace gen;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Case {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
  int64_t pad = 0;  // leading dimensions = width + pad
};

// A rows x cols matrix with row stride cols + pad: normal values, NaN in the gaps.
std::vector<float> random_matrix(int64_t rows, int64_t cols, int64_t pad, Rng& rng) {
  std::vector<float> m(static_cast<size_t>(rows * (cols + pad)), kNaN);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) m[i * (cols + pad) + j] = rng.normal();
  return m;
}

// Runs `product` (sgemm or gemm_strided<float>) on one case and checks every element of C within
// the rigorous bound for a float sum of K products in any order, (K + 2) u (|alpha| sum |a b| +
// |beta c|), and that the gaps of C are untouched. With beta == 0, C starts as NaN.
template <typename Product>
void check(const Case& c, Rng& rng, Product product) {
  CAPTURE(c.ta);
  CAPTURE(c.tb);
  CAPTURE(c.M);
  CAPTURE(c.N);
  CAPTURE(c.K);
  CAPTURE(c.alpha);
  CAPTURE(c.beta);
  CAPTURE(c.pad);
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
  std::vector<float> A = random_matrix(a_rows, a_cols, c.pad, rng), B = random_matrix(b_rows, b_cols, c.pad, rng);
  std::vector<float> C = random_matrix(c.M, c.N, c.pad, rng);
  if (c.beta == 0.0f) std::fill(C.begin(), C.end(), kNaN);
  const std::vector<float> C0 = C;
  product(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);

  const double u = std::ldexp(1.0, -24);
  int64_t wrong = 0, gaps_touched = 0;
  double worst = 0;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      double sum = 0, magnitude = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = c.ta ? A[k * lda + i] : A[i * lda + k];
        const double b = c.tb ? B[j * ldb + k] : B[k * ldb + j];
        sum += a * b;
        magnitude += std::abs(a * b);
      }
      double expected = c.alpha * sum, bound = std::abs(c.alpha) * magnitude;
      if (c.beta != 0.0f) {
        expected += c.beta * static_cast<double>(C0[i * ldc + j]);
        bound += std::abs(c.beta * static_cast<double>(C0[i * ldc + j]));
      }
      bound *= static_cast<double>(c.K + 2) * u;
      const double error = std::abs(C[i * ldc + j] - expected);
      if (!(error <= bound)) ++wrong;  // NaN counts as wrong
      if (bound > 0) worst = std::max(worst, error / bound);
    }
    for (int64_t j = c.N; j < ldc && i + 1 < c.M; ++j) gaps_touched += !std::isnan(C[i * ldc + j]);
  }
  CAPTURE(worst);
  CHECK(wrong == 0);
  CHECK(gaps_touched == 0);
}

void sgemm_call(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  nn::sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace

TEST_CASE("sgemm: all transposes, sizes around the micro-tile edges") {
  Rng rng(7);
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t M : {1, 3, 11, 12, 13, 17, 65, 129})
        for (int64_t N : {1, 15, 16, 17, 33, 127})
          for (int64_t K : {1, 3, 17, 129}) check({ta, tb, M, N, K, 1.0f, 0.0f}, rng, sgemm_call);
}

TEST_CASE("sgemm: depth and width over the cache blocks, strides past the width") {
  Rng rng(8);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      check({ta, tb, 37, 45, 600, 1.0f, 1.0f, 3}, rng, sgemm_call);    // 3 blocks of depth 200
      check({ta, tb, 29, 1100, 33, 1.0f, 0.0f, 16}, rng, sgemm_call);  // 3 blocks of width
      check({ta, tb, 130, 70, 257, -0.5f, 2.0f, 1}, rng, sgemm_call);
      // Leading dimensions of a page (1024 floats) and more: a transposed A is then packed.
      check({ta, tb, 25, 40, 300, 1.0f, 0.5f, 1024 - 25}, rng, sgemm_call);
      check({ta, tb, 13, 17, 5, 1.0f, 0.0f, 1100}, rng, sgemm_call);
    }
  }
}

TEST_CASE("sgemm: alpha and beta; beta = 0 ignores NaN in C; alpha = 0 or K = 0 scales C") {
  Rng rng(9);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (float alpha : {1.0f, -1.0f, 0.25f, 0.0f}) {
        for (float beta : {0.0f, 1.0f, -2.0f, 0.5f}) {
          check({ta, tb, 19, 35, 21, alpha, beta, 5}, rng, sgemm_call);
          check({ta, tb, 7, 9, 0, alpha, beta, 2}, rng, sgemm_call);
        }
      }
    }
  }
}

// OpenBLAS, loaded on its first call (tensor/blas.h): what sgemm forwards to without AVX2 and FMA
// (and the double-precision checks use), run here whatever the CPU.
TEST_CASE("blas::sgemm: OpenBLAS, loaded on first use, on the same cases") {
  Rng rng(11);
  auto openblas = [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    blas::sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  };
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t M : {1, 13, 65})
        for (int64_t N : {1, 17, 127}) check({ta, tb, M, N, 129, 1.0f, 0.0f, 3}, rng, openblas);
  check({false, true, 37, 45, 600, -0.5f, 2.0f, 1}, rng, openblas);
  CHECK(blas::loaded());
}

TEST_CASE("sgemm: empty products leave C alone") {
  std::vector<float> A(4, 1.0f), B(4, 1.0f), C(4, 5.0f);
  nn::sgemm(false, false, 0, 2, 2, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2);
  nn::sgemm(true, true, 2, 0, 2, 1.0f, A.data(), 2, B.data(), 2, 0.0f, C.data(), 2);
  for (float x : C) CHECK(x == 5.0f);
}

TEST_CASE("gemm_strided<float>: the shapes of training (attention views, linear layers)") {
  Rng rng(10);
  auto strided = [](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    nn::gemm_strided<float>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  };
  check({false, true, 64, 64, 32, 0.17f, 0.0f, 352}, rng, strided);  // q k^T, rows 3C = 384 apart
  check({true, false, 64, 32, 64, 1.0f, 1.0f, 96}, rng, strided);
  check({false, true, 384, 384, 128, 1.0f, 1.0f}, rng, strided);
  check({false, false, 384, 128, 512, 1.0f, 1.0f}, rng, strided);
  check({true, false, 64, 128, 768, 1.0f, 1.0f}, rng, strided);
}
