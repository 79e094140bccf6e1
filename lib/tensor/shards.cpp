#include "tensor/shards.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <stdexcept>

#include <omp.h>

#include "core/cluster.h"
#include "core/error.h"

namespace gen {

namespace {
// What sum() throws in the shards that were waiting when another shard failed: not an error of
// their own (run() rethrows the first real one).
struct Cancelled {};
}  // namespace

ShardTeam::ShardTeam(int local, Cluster* cluster)
    : local_(local), cluster_(cluster && cluster->size() > 1 ? cluster : nullptr),
      members_(static_cast<size_t>(local)), slots_(static_cast<size_t>(local)) {
  if (local < 1 || (local & (local - 1)) != 0) throw std::logic_error("ShardTeam: the shards must be a power of two");
  for (int k = 0; k < local; ++k) members_[static_cast<size_t>(k)].team = this, members_[static_cast<size_t>(k)].k = k;
}

void ShardTeam::take_turn() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return turns_ > 0 || failed_; });
  --turns_;
}

void ShardTeam::give_turn() {
  std::lock_guard lock(mutex_);
  ++turns_;
  changed_.notify_all();
}

void ShardTeam::run(const std::function<void(int k)>& part) {
  const int threads = std::max(1, omp_get_max_threads());
  turns_ = threads, arrived_ = 0, finished_ = 0, round_ = 0, failed_ = false;
  std::exception_ptr failure;
  // The region is active (more than one thread) whenever anything runs in parallel, so that
  // every kernel inside runs on its shard's thread alone: the bits do not depend on the threads.
#pragma omp parallel num_threads(std::max(local_, threads))
  {
#pragma omp master
    together_ = omp_get_num_threads() >= local_;
#pragma omp barrier
    for (int k = omp_get_thread_num(); k < local_; k += omp_get_num_threads()) {
      take_turn();
      try {
        part(k);
      } catch (const Cancelled&) {
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!failure) failure = std::current_exception();
        failed_ = true;
      }
      std::lock_guard lock(mutex_);
      ++finished_, ++turns_;
      changed_.notify_all();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

void ShardTeam::sum(int k, double* data, size_t n) {
  std::unique_lock lock(mutex_);
  if (failed_) throw Cancelled{};
  if (!together_)
    throw Error("OpenMP", fmt::format("batch normalization over {} shards needs a thread for each: unset "
                                      "OMP_THREAD_LIMIT and OMP_DYNAMIC", local_));
  if (arrived_ == 0) size_ = n;
  if (n != size_) {
    failed_ = true;
    changed_.notify_all();
    throw std::logic_error("ShardTeam::sum: the shards' sums differ in size");
  }
  slots_[static_cast<size_t>(k)] = data;
  ++arrived_, ++turns_;  // waiting gives the turn away
  changed_.notify_all();
  if (k == 0) {
    // The calling thread of run(): it adds up, and alone talks to the other ranks.
    changed_.wait(lock, [&] { return failed_ || arrived_ + finished_ == local_; });
    if (failed_) throw Cancelled{};
    if (finished_ > 0) {
      failed_ = true;
      changed_.notify_all();
      throw std::logic_error("ShardTeam::sum: a shard ended without the sum the others wait in");
    }
    lock.unlock();
    try {
      for (int half = 1; half < local_; half *= 2)
        for (int a = 0; a + half < local_; a += 2 * half) {
          double* to = slots_[static_cast<size_t>(a)];
          const double* from = slots_[static_cast<size_t>(a + half)];
          for (size_t i = 0; i < n; ++i) to[i] += from[i];
        }
      if (cluster_) cluster_->tree_sum(data, n);
      for (int b = 1; b < local_; ++b) std::copy(data, data + n, slots_[static_cast<size_t>(b)]);
    } catch (...) {
      lock.lock();
      failed_ = true;
      changed_.notify_all();
      throw;
    }
    lock.lock();
    arrived_ = 0;
    ++round_;
    changed_.notify_all();
  } else {
    const int64_t round = round_;
    changed_.wait(lock, [&] { return failed_ || round_ != round; });
    if (round_ == round) throw Cancelled{};
  }
  changed_.wait(lock, [&] { return turns_ > 0 || failed_; });
  --turns_;
}

std::vector<double> gather_shards(const std::vector<double>& mine, Cluster* cluster) {
  if (!cluster || cluster->size() == 1) return mine;
  std::vector<double> all(mine.size() * static_cast<size_t>(cluster->size()));
  cluster->gather(mine.data(), mine.size(), all.data());
  return all;
}

std::vector<ShardFigures> run_shards(Parameters& params, std::vector<Arena>& arenas, bool training,
                                     const std::function<ShardFigures(int shard, Graph& g)>& part,
                                     Cluster* cluster) {
  const int local = params.local_shards(), first = params.first_shard();
  if (arenas.size() < static_cast<size_t>(local)) throw std::logic_error("run_shards: fewer arenas than shards");
  std::vector<double> mine(2 * static_cast<size_t>(local));
  ShardTeam team(local, cluster);
  team.run([&](int k) {
    Arena& arena = arenas[static_cast<size_t>(k)];
    arena.reset();
    if (training) params.zero_shard_grads(first + k);
    Graph g(arena, training, team.member(k));
    const ShardFigures f = part(first + k, g);
    mine[2 * static_cast<size_t>(k)] = f.loss, mine[2 * static_cast<size_t>(k) + 1] = f.extra;
    if (training) g.backward();
  });
  if (training) params.reduce_shards(cluster);
  const std::vector<double> all = gather_shards(mine, cluster);
  std::vector<ShardFigures> every(all.size() / 2);
  for (size_t k = 0; k < every.size(); ++k) every[k] = {all[2 * k], all[2 * k + 1]};
  return every;
}

double mean_loss(const std::vector<ShardFigures>& shards) {
  double sum = 0;
  for (const ShardFigures& s : shards) sum += s.loss;
  return sum / static_cast<double>(shards.size());
}

int batch_shards(int64_t batch, int64_t min_per_shard) {
  int shards = 1;
  while (shards < kMaxShards && batch % (2 * shards) == 0 && batch / (2 * shards) >= min_per_shard) shards *= 2;
  return shards;
}

}  // namespace gen
