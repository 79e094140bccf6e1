// Data parallelism: a batch split into equal shards, fixed by the batch (never by the threads or
// ranks), so that a run gives the same bytes however the shards are spread. Each shard runs its
// forward and backward pass on one thread (each kernel inside on that thread alone); the shards'
// weight gradients are added in a fixed binary tree over the shard numbers (Parameters::
// reduce_shards), within a process and then across MPI ranks, which follow the same tree.
//
// Most layers see one image (or sequence) at a time and need nothing from other shards. Batch
// normalization needs the whole batch's statistics: its shards meet (ShardSum) to add up their
// per-channel sums in the same tree before they go on. So every local shard runs on a thread of
// its own, at most --threads of them computing at once; a shard that waits for the others gives
// its turn away.
//
//   params.set_shards(batch_shards(B, 16), &cluster());
//   auto figures = run_shards(params, arenas, /*training=*/true, [&](int shard, Graph& g) {
//     return ShardFigures{g.mse(model.forward(g, images_of(shard), shard), target_of(shard))};
//   }, &cluster());                        // params.grads() now holds the batch's gradient
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "tensor/graph.h"
#include "tensor/tensor.h"

namespace gen {

class Cluster;

// What a graph of one shard calls to add a small vector up over every shard of the batch.
class ShardSum {
 public:
  virtual ~ShardSum() = default;
  // data[n] becomes the sum of every shard's data[n] (the fixed tree over shard numbers, across
  // ranks too), the same bits in each shard. Every shard calls it, in the same order, with the
  // same n.
  virtual void sum(double* data, size_t n) = 0;
  // Whether this is the process's first shard, which alone updates state the shards share (batch
  // normalization's running statistics).
  virtual bool leads() const = 0;
};

// This process's shards of a batch, run together.
class ShardTeam {
 public:
  // local shards here (a power of two); the cluster's other ranks hold the rest (null: none).
  ShardTeam(int local, Cluster* cluster);
  ShardTeam(const ShardTeam&) = delete;
  ShardTeam& operator=(const ShardTeam&) = delete;
  int local() const { return local_; }

  // part(k) for the local shards k = 0 .. local - 1, each on its own OpenMP thread, at most
  // omp_get_max_threads() computing at once (waiting in sum() does not count). Shard 0 runs on
  // the calling thread, which alone makes the MPI calls. The first exception a part throws is
  // rethrown once every part has ended (the others stop at their next sum()).
  void run(const std::function<void(int k)>& part);

  // Local shard k's way to meet the others, for Graph (valid while the team lives).
  ShardSum* member(int k) { return &members_[static_cast<size_t>(k)]; }

 private:
  struct Member : ShardSum {
    ShardTeam* team = nullptr;
    int k = 0;
    void sum(double* data, size_t n) override { team->sum(k, data, n); }
    bool leads() const override { return k == 0; }
  };
  void sum(int k, double* data, size_t n);
  void take_turn();
  void give_turn();

  int local_;
  Cluster* cluster_;
  std::vector<Member> members_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int turns_ = 0;                    // shards that may compute now
  int arrived_ = 0, finished_ = 0;   // at the current sum; parts that have returned
  int64_t round_ = 0;                // sums completed
  bool failed_ = false;
  bool together_ = true;             // every shard has a thread (OMP_THREAD_LIMIT may say no)
  std::vector<double*> slots_;       // each shard's data at the current sum
  size_t size_ = 0;
};

// What a shard of a batch reports: its mean loss, and one more figure (a count of correct
// predictions, say).
struct ShardFigures {
  double loss = 0, extra = 0;
};

// Runs part(shard, graph) for this process's shards (Parameters::set_shards) on a ShardTeam,
// each with its own arena (arenas.size() >= its local shards) and graph. Training zeroes the
// shard's gradients first, runs its backward pass, and leaves the batch's gradient in
// params.grads() (reduce_shards, across the cluster's ranks too). Returns every shard's figures,
// in shard order (gathered from the ranks).
std::vector<ShardFigures> run_shards(Parameters& params, std::vector<Arena>& arenas, bool training,
                                     const std::function<ShardFigures(int shard, Graph& g)>& part,
                                     Cluster* cluster = nullptr);
// Every shard's figures, in shard order: mine[per * local] (this process's shards, in order)
// gathered from the ranks into per * (all shards) values.
std::vector<double> gather_shards(const std::vector<double>& mine, Cluster* cluster);
// The batch's mean loss: the mean of the equal shards' losses, added in shard order.
double mean_loss(const std::vector<ShardFigures>& shards);

// The shards of a batch: the largest power of two up to kMaxShards that divides it and leaves
// each shard at least min_per_shard items (sequences, images). Fixed by the batch (and the
// model) alone, so that a run gives the same bytes on any number of threads or ranks (up to
// that many work at once); smaller shards would mean smaller, slower matrix products.
inline constexpr int kMaxShards = 8;
int batch_shards(int64_t batch, int64_t min_per_shard = 1);

}  // namespace gen
