// The processes a job runs on: one, or the ranks of an MPI job started by mpirun (Open MPI).
//
// A tool not started by mpirun never initializes MPI (a singleton MPI_Init costs over a second);
// it runs as a cluster of one, and a tool that does not link gen_mpi (gtok, gsample) has no MPI
// at all. Under mpirun (OMPI_COMM_WORLD_SIZE in the environment) the first call to cluster()
// initializes MPI; the data-parallel trainers then split each batch's shards over the ranks.
//
//   gen::Cluster& c = gen::cluster();
//   if (c.rank() == 0) write_checkpoint();
//   c.tree_sum(partial, n);      // every rank: the sum over ranks, the same bits on each
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace gen {

class Cluster {
 public:
  virtual ~Cluster() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  // data[n] summed over the ranks in a fixed binary tree over rank numbers (ranks r and r ^ 2^l
  // paired at level l), so that every rank ends with the same bits, and the sum continues a tree
  // over shards whose subtrees the ranks hold. size() a power of two. (MPI: Rabenseifner's
  // reduce-scatter and all-gather, each rank sending 2 (N - 1) / N of the buffer.)
  virtual void tree_sum(float* /*data*/, size_t /*n*/) {}
  // The same for doubles (small sums: batch normalization's statistics).
  virtual void tree_sum(double* /*data*/, size_t /*n*/) {}
  // Every rank's n values, in rank order, into all[n * size()].
  virtual void gather(const double* mine, size_t n, double* all);
  // Every rank's rows of `width` floats (as many as each has, maybe none), in rank order, into
  // all (on every rank; room for every rank's rows).
  virtual void gather_rows(const float* mine, int64_t rows, int64_t width, float* all);
  // Whether any rank's flag is set (a stop request): the same answer on every rank.
  virtual bool any(bool flag) { return flag; }
  // Wait for every rank.
  virtual void barrier() {}
  // Seconds this rank has spent in the exchanges above, and waiting for slower ranks before the
  // gradient's.
  double exchange_seconds() const { return exchange_seconds_; }
  double wait_seconds() const { return wait_seconds_; }
  // Ends the whole job after an error on this rank (the others may be waiting on it: MPI_Abort,
  // never a hang). One process: nothing.
  virtual void fail(int /*code*/) {}

 protected:
  double exchange_seconds_ = 0, wait_seconds_ = 0;
};

// The items [begin, end) of n (images to sample, rows to score) that this rank takes: contiguous
// and in rank order, the shares differing by at most one.
struct Share {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Share share_of(int64_t n, const Cluster& cluster);
// The rows [begin, end) of `width` floats of every rank's share of n (mine: this rank's),
// gathered on every rank into n rows in order.
std::vector<float> gather_shares(Cluster& cluster, const float* mine, int64_t n, int64_t width);

// This process's cluster (see above).
Cluster& cluster();
// The cluster if cluster() has been called, else null (an error path that must not start MPI).
Cluster* cluster_if_started();

// Defined by gen_mpi (lib/mpi) in the tools that link it; elsewhere a weak stand-in returns null.
std::unique_ptr<Cluster> make_mpi_cluster();

}  // namespace gen
