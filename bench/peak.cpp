// The machine's limits, measured: fp32 FMA throughput and memory read bandwidth, on 1 and on N
// threads. The other benches report their figures as a share of these (bench/lib.sh), measured in
// the same run, so that a figure says how far from the hardware it is, on whatever CPU ran it.
//
// FMA: each thread runs kChains independent chains of vector FMAs (acc = acc * m + a) on
// registers: enough in flight to cover the FMA latency on every x86 core we know (2 pipes x 4
// cycles = 8 needed; 12 run). One source for both widths: GCC's vector extensions, 16 floats a
// vector where the compiler targets AVX-512, 8 with AVX2 (a * b + c contracts to one vfmadd).
// Memory: each thread sums its own part of a 1 GiB array (far past the caches), vectorized; and
// of a 4 MiB one read over and over (the cache a small model's weights stream from).
// Each figure is the best of REPEAT runs.
//
// Usage: peak [REPEAT]            the table
//        peak --gflops THREADS    only the FMA figure for THREADS threads, in GFLOP/s
//        peak --gbps THREADS      only the memory read bandwidth for THREADS threads, in GB/s
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

#if defined(__AVX512F__)
constexpr int kFloats = 16;
constexpr const char* kIsa = "AVX-512";
#elif defined(__AVX__)
constexpr int kFloats = 8;
constexpr const char* kIsa = "AVX2";
#else
constexpr int kFloats = 4;
constexpr const char* kIsa = "SSE";
#endif
using Vector = float __attribute__((vector_size(kFloats * sizeof(float))));
constexpr int kChains = 12;  // plus m and a: 14 registers, within AVX2's 16
constexpr long kIterations = 50'000'000;  // per thread: 2 * 16 * 12 * 5e7 = 19.2 GFLOP on AVX-512

using Clock = std::chrono::steady_clock;

// Runs body(t) on `threads` threads started together; returns the seconds the slowest took.
template <typename Body>
double run_threads(int threads, Body body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> seconds(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load()) {
      }
      auto start = Clock::now();
      body(t);
      seconds[static_cast<size_t>(t)] = std::chrono::duration<double>(Clock::now() - start).count();
    });
  }
  while (ready.load() < threads) {
  }
  go.store(true);
  for (auto& thread : pool) thread.join();
  return *std::max_element(seconds.begin(), seconds.end());
}

float sink;  // results go here, so that the compiler keeps the work

double fma_gflops(int threads, int repeat) {
  auto body = [](int t) {
    Vector acc[kChains], m, a;
    for (int i = 0; i < kFloats; ++i) m[i] = 0.999999f, a[i] = 1e-7f * static_cast<float>(t + 1);
    for (int c = 0; c < kChains; ++c)
      for (int i = 0; i < kFloats; ++i) acc[c][i] = static_cast<float>(c + i);
    for (long k = 0; k < kIterations; ++k) {
      for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * m + a;
      asm volatile("" : "+v"(m), "+v"(a));  // m and a are not known constants: nothing folds
    }
    float s = 0;
    for (int c = 0; c < kChains; ++c)
      for (int i = 0; i < kFloats; ++i) s += acc[c][i];
    sink += s;
  };
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) best = std::min(best, run_threads(threads, body));
  return 2.0 * kFloats * kChains * static_cast<double>(kIterations) * threads / best * 1e-9;
}

// Bytes read a second by `threads` threads, each summing its part of a `bytes` array `passes`
// times: 1 GiB once is memory; 4 MiB many times is what a small model's weights cost a token
// (in the last-level cache).
double read_gbps(int threads, int repeat, size_t bytes = size_t{1} << 30, int passes = 1) {
  const size_t n = bytes / sizeof(float);
  std::vector<float> data(n);
  // Touched by the threads that read it (first touch places the pages).
  run_threads(threads, [&](int t) {
    const size_t begin = n * t / threads, end = n * (t + 1) / threads;
    for (size_t i = begin; i < end; ++i) data[i] = static_cast<float>(i & 7);
  });
  auto body = [&](int t) {
    const size_t begin = n * t / threads, end = n * (t + 1) / threads;
    Vector sums[4] = {};
    const float* p = data.data();
    float s = 0;
    for (int pass = 0; pass < passes; ++pass) {
      size_t i = begin;
      for (; i + 4 * kFloats <= end; i += 4 * kFloats) {
        for (int u = 0; u < 4; ++u) {
          Vector v;
          std::memcpy(&v, p + i + u * kFloats, sizeof v);
          sums[u] += v;
        }
      }
      for (; i < end; ++i) s += p[i];
      asm volatile("" : : "r"(p) : "memory");  // each pass reads the array again
    }
    for (auto& v : sums)
      for (int k = 0; k < kFloats; ++k) s += v[k];
    sink += s;
  };
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) best = std::min(best, run_threads(threads, body));
  return static_cast<double>(n * sizeof(float)) * passes / best * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && (std::strcmp(argv[1], "--gflops") == 0 || std::strcmp(argv[1], "--gbps") == 0)) {
    const int threads = std::max(1, std::atoi(argv[2]));
    std::printf("%.1f\n", argv[1][2] == 'g' && argv[1][3] == 'f' ? fma_gflops(threads, 3) : read_gbps(threads, 3));
    return 0;
  }
  const int repeat = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::printf("peak probe: %s, %d floats a vector, %d chains of FMA a thread; best of %d\n", kIsa, kFloats, kChains,
              repeat);
  std::printf("%-28s %10s\n", "", "measured");
  for (int threads = 1; threads <= cores; threads = threads < cores ? std::min(cores, threads * 2) : cores + 1)
    std::printf("fp32 FMA, %d thread%s %*s %10.1f GFLOP/s\n", threads, threads == 1 ? "" : "s",
                threads == 1 ? 8 : 7, "", fma_gflops(threads, repeat));
  for (int threads = 1; threads <= cores; threads = threads < cores ? std::min(cores, threads * 2) : cores + 1)
    std::printf("memory read, %d thread%s %*s %10.1f GB/s\n", threads, threads == 1 ? "" : "s", threads == 1 ? 5 : 4,
                "", read_gbps(threads, repeat));
  for (int threads = 1; threads <= cores; threads = threads < cores ? std::min(cores, threads * 2) : cores + 1)
    std::printf("4 MiB re-read, %d thread%s %*s %10.1f GB/s\n", threads, threads == 1 ? "" : "s", threads == 1 ? 3 : 2,
                "", read_gbps(threads, repeat, size_t{4} << 20, 256));
  return sink == 12345.0f ? 1 : 0;
}
