#include "core/threads.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

namespace gen {

int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void parallel_for(size_t count, int threads, const std::function<void(size_t)>& fn) {
  size_t workers = std::min<size_t>(count, threads < 1 ? 1 : static_cast<size_t>(threads));
  if (workers <= 1) {
    for (size_t i = 0; i < count; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_lock;
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < count;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_lock);
        if (!failure) failure = std::current_exception();
        next.store(count);
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < workers; ++t) pool.emplace_back(work);
  work();
  for (auto& thread : pool) thread.join();
  if (failure) std::rethrow_exception(failure);
}

// OpenMP's idle threads spin (libgomp: up to 300k pauses, about a millisecond) waiting for the
// next parallel region. On a busy machine a spinning thread takes a core from threads with work:
// measured with a load average of 10-14 on two cores, a step took 550 ms spinning against 70 ms
// with sleeping workers. Sleeping costs tens of microseconds to wake per region instead, and a
// U-Net forward pass has about 40 regions: 64 guided images through 15 DPM-Solver++ steps took
// 2.86-3.00 s with sleeping workers, 2.76-2.82 s spinning. A short spin (GOMP_SPINCOUNT=20000,
// a tenth or two of a millisecond; libgomp's setting, which LLVM's libomp ignores) keeps the spinning's speed (2.78-2.79 s); with 4 and 10 busy loops
// beside it, sampling was as fast as with sleeping workers or faster (2.03 s against 2.39 s;
// 3.79-3.95 s against 3.86-4.25 s; full spinning: 2.77 s), 8 ggan steps beside 10 busy loops
// 4-12% slower (15.4-15.6 s against 13.7-14.9 s), and 30 ggan steps on a quiet machine no
// slower (4.70 s against 4.71-4.88 s). It is the default here unless the user chose
// (OMP_WAIT_POLICY or GOMP_SPINCOUNT). libgomp reads its environment when it is loaded, before
// main: set it and start over.
void spin_briefly_when_idle(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("GOMP_SPINCOUNT", "20000", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: then run as we are
}

SpinBarrier::SpinBarrier() : processors_(omp_get_num_procs()) {}

void SpinBarrier::wait(int threads) {
  if (threads <= 1) return;
  const unsigned generation = generation_.load(std::memory_order_relaxed);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == threads - 1) {  // the last to arrive
    arrived_.store(0, std::memory_order_relaxed);
    generation_.store(generation + 1, std::memory_order_release);
    return;
  }
  const int spins = threads <= processors_ ? 10000 : 0;
  for (int spun = 0; generation_.load(std::memory_order_acquire) == generation;) {
    if (spun < spins) {
      ++spun;
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
}

int threads_for(int64_t items, bool worth_it) {
  if (omp_in_parallel() || !worth_it) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), std::max<int64_t>(items, 1)));
}

void use_threads(int threads) {
  omp_set_num_threads(threads);
  omp_set_max_active_levels(1);  // a parallel region inside another (a shard's layers) runs on its thread
}

}  // namespace gen
