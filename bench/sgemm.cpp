// gen::nn::sgemm against cblas_sgemm (OpenBLAS, one thread) on the per-thread products of one
// training step of the nanoGPT CPU recipe (B*T = 768 rows split over 2 threads, C = 128, 4 heads
// of 32, context 64) and the largest of a DCGAN step, side by side in one run: best of REPEAT
// timings (in alternation) of a loop of calls long enough to swamp the clock, GFLOP/s of each
// and their ratio. Each shape also checks that the two agree. Built and run by `make -C bench
// sgemm` (once with the environment as it is, once with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
// unset; BENCH_ISA=avx2: gen's AVX2 kernel, and OpenBLAS's Haswell kernels once more).
// Usage: bench_sgemm [REPEAT [FILTER]]   (FILTER: only the products whose name contains it)
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tensor/sgemm.h"

namespace {

struct Shape {
  const char* name;
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  float beta;
};

// The leading dimensions are those of the calls in lib/tensor/kernels.cpp.
Shape contiguous(const char* name, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float beta) {
  return {name, ta, tb, M, N, K, ta ? M : K, tb ? K : N, N, beta};
}

using Clock = std::chrono::steady_clock;

// Best seconds per call of each of two contenders, timed in alternation so that both see the
// same load from the rest of the machine; each timing is a loop of calls long enough (about
// 10 ms at 100 GFLOP/s) to swamp the clock.
template <typename F, typename G>
std::pair<double, double> best_seconds(F&& f, G&& g, int repeat, int64_t flops) {
  const int64_t calls = std::max<int64_t>(1, int64_t{1000000000} / std::max<int64_t>(flops, 1));
  auto time = [&](auto& call) {
    auto start = Clock::now();
    for (int64_t i = 0; i < calls; ++i) call();
    return std::chrono::duration<double>(Clock::now() - start).count() / static_cast<double>(calls);
  };
  f();  // warm the caches and the packing buffers
  g();
  double best_f = 1e30, best_g = 1e30;
  for (int r = 0; r < repeat; ++r) {
    best_f = std::min(best_f, time(f));
    best_g = std::min(best_g, time(g));
  }
  return {best_f, best_g};
}

}  // namespace

int main(int argc, char** argv) {
  const int repeat = argc > 1 ? std::atoi(argv[1]) : 7;
  const std::string filter = argc > 2 ? argv[2] : "";
  openblas_set_num_threads(1);
  const int64_t rows = 384;  // 768 rows of the step, split over 2 threads
  const std::vector<Shape> shapes = {
      contiguous("fwd qkv        x W^T", false, true, rows, 384, 128, 0),
      contiguous("fwd attn proj  x W^T", false, true, rows, 128, 128, 0),
      contiguous("fwd fc         x W^T", false, true, rows, 512, 128, 0),
      contiguous("fwd fc proj    x W^T", false, true, rows, 128, 512, 0),
      contiguous("fwd lm head 68 x W^T", false, true, rows, 68, 128, 0),
      contiguous("fwd lm head324 x W^T", false, true, rows, 324, 128, 0),
      contiguous("bwd dinp qkv   dy W ", false, false, rows, 128, 384, 1),
      contiguous("bwd dinp proj  dy W ", false, false, rows, 128, 128, 1),
      contiguous("bwd dinp fc    dy W ", false, false, rows, 128, 512, 1),
      contiguous("bwd dinp fcprj dy W ", false, false, rows, 512, 128, 1),
      contiguous("bwd dinp lm 68 dy W ", false, false, rows, 128, 68, 1),
      contiguous("bwd dw qkv    dy^T x", true, false, 192, 128, 768, 1),
      contiguous("bwd dw proj   dy^T x", true, false, 64, 128, 768, 1),
      contiguous("bwd dw fc     dy^T x", true, false, 256, 128, 768, 1),
      contiguous("bwd dw fcproj dy^T x", true, false, 64, 512, 768, 1),
      contiguous("bwd dw lm 68  dy^T x", true, false, 36, 128, 768, 1),
      // Attention per (batch, head), views into qkv [T, 3C] and out [T, C].
      {"att S = Q K^T      ", false, true, 64, 64, 32, 384, 384, 64, 0},
      {"att O = P V        ", false, false, 64, 32, 64, 64, 384, 128, 0},
      {"att dV += P^T dO   ", true, false, 64, 32, 64, 64, 128, 384, 1},
      {"att dQ += dS K     ", false, false, 64, 32, 64, 64, 384, 384, 1},
      // The DCGAN step's largest (ggan train, batch 64 in 8 groups of 8 images of 7 x 7), as
      // conv.cpp calls them: weights [OC, C K K] against im2col's columns.
      {"gan dcol = W^T dy  ", true, false, 256, 392, 256, 2048, 392, 392, 0},
      {"gan y = W col      ", false, false, 256, 392, 256, 2048, 392, 392, 1},
      {"gan dcol = W^T dy 2", true, false, 256, 392, 128, 1024, 392, 392, 0},
      {"gan dW += dy col^T ", false, true, 256, 256, 392, 392, 392, 256, 1},
      {"gan y = W col 2    ", false, false, 128, 392, 256, 1024, 392, 392, 1},
  };
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::printf("OpenBLAS core %s (OPENBLAS_CORETYPE=%s), gen sgemm %s; best of %d, 1 thread\n", openblas_get_corename(),
              core ? core : "unset", gen::nn::sgemm_kernel(), repeat);
  std::printf("%-22s %5s %5s %5s %9s %9s %7s %9s\n", "product", "M", "N", "K", "gen GF/s", "blas GF/s", "ratio",
              "max diff");
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  double log_sum = 0;
  int count = 0;
  for (const Shape& s : shapes) {
    if (std::string(s.name).find(filter) == std::string::npos) continue;
    ++count;
    const int64_t a_rows = s.ta ? s.K : s.M, b_rows = s.tb ? s.N : s.K;
    std::vector<float> A(static_cast<size_t>(a_rows * s.lda)), B(static_cast<size_t>(b_rows * s.ldb));
    std::vector<float> C0(static_cast<size_t>(s.M * s.ldc));
    for (auto& x : A) x = normal(rng);
    for (auto& x : B) x = normal(rng);
    for (auto& x : C0) x = normal(rng);
    std::vector<float> C1 = C0, C2 = C0;
    // beta = 1 accumulates over the timing loop; the values stay finite, only the speed counts.
    auto ours = [&] {
      gen::nn::sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), s.lda, B.data(), s.ldb, s.beta, C1.data(), s.ldc);
    };
    auto blas = [&] {
      cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans,
                  static_cast<int>(s.M), static_cast<int>(s.N), static_cast<int>(s.K), 1.0f, A.data(),
                  static_cast<int>(s.lda), B.data(), static_cast<int>(s.ldb), s.beta, C2.data(),
                  static_cast<int>(s.ldc));
    };
    // One call each from the same C, for the agreement check.
    C1 = C0;
    C2 = C0;
    ours();
    blas();
    float diff = 0;
    for (int64_t i = 0; i < s.M; ++i)
      for (int64_t j = 0; j < s.N; ++j)
        diff = std::max(diff, std::abs(C1[i * s.ldc + j] - C2[i * s.ldc + j]));
    const int64_t flops = 2 * s.M * s.N * s.K;
    const auto [t_ours, t_blas] = best_seconds(ours, blas, repeat, flops);
    log_sum += std::log(t_blas / t_ours);
    std::printf("%-22s %5ld %5ld %5ld %9.1f %9.1f %7.2f %9.2g\n", s.name, static_cast<long>(s.M),
                static_cast<long>(s.N), static_cast<long>(s.K), flops / t_ours * 1e-9, flops / t_blas * 1e-9,
                t_blas / t_ours, diff);
  }
  std::printf("geometric mean of the ratios (OpenBLAS time / gen time): %.2f\n",
              std::exp(log_sum / std::max(count, 1)));
}
