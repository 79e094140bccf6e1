// Threads for loops that are not GEMMs. Count on two cores and do not oversubscribe them.
//
//   gen::parallel_for(parts, [&](size_t i) { work(i); });   // i = 0..parts-1, in parallel
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace gen {

// Threads to use by default: the hardware's, at least 1.
int default_threads();

// The thread count for a tool's work: OpenMP loops (and the GEMMs inside them) on `threads`
// threads, OpenBLAS (tensor/blas.h) on one, so that the two never stack.
void use_threads(int threads);

// The threads for an OpenMP loop over `items` independent pieces: one inside a parallel region
// (a shard's layers run on the shard's thread alone) or where the work does not pay for waking
// another thread (worth_it false: a region costs microseconds, tens when the workers sleep),
// else as many as there are pieces, up to OpenMP's count. Callers run one thread's work without
// entering a region at all: libgomp ends even a one-thread region with a futex.
int threads_for(int64_t items, bool worth_it);
// A pass over n values (element-wise, or an optimizer's update): split from 128K values, which
// take about as long as a region costs.
inline int threads_for_pass(int64_t n) { return threads_for(n, n >= (int64_t{1} << 17)); }

// A barrier for the `threads` threads of one parallel region, for work that meets at a barrier
// many times in microseconds (a generated token's steps: 21 barriers): an arrival counter and a
// generation number that the waiting threads spin on, a cache line each. About 0.3 us a barrier
// between two cores of a Zen 4 VM against libgomp's 0.5. A waiting thread yields its core after
// 10000 pauses, and at once where there are more threads than processors: there a spinning
// thread holds the core that the one it waits for needs (spinning first, 3 threads on 2 cores
// took 5.3 ms a token against libgomp's 0.7). Writes before wait() are visible to every thread
// after it.
// `threads` is the team's size (omp_get_num_threads(), not the count asked for: OMP_DYNAMIC or
// OMP_THREAD_LIMIT can give fewer), the same in every thread's call.
class SpinBarrier {
 public:
  SpinBarrier();
  void wait(int threads);

 private:
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<unsigned> generation_{0};
  int processors_;
};

// Runs fn(0..count-1) on up to `threads` threads (the caller's thread is one of them) and
// waits; the first exception thrown by any fn is rethrown here.
void parallel_for(size_t count, int threads, const std::function<void(size_t)>& fn);

// Call first thing in main() of a tool that runs OpenMP loops: makes OpenMP's idle threads spin
// only briefly (tens of microseconds) before they sleep, rather than about a millisecond, unless
// the user chose (OMP_WAIT_POLICY, GOMP_SPINCOUNT), by setting GOMP_SPINCOUNT=20000 and starting
// the program over (libgomp reads its environment before main). Returns only if there was
// nothing to do or the restart failed.
void spin_briefly_when_idle(char** argv);

}  // namespace gen
