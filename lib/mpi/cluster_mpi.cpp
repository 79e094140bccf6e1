// The MPI cluster (core/cluster.h), linked only into the tools that scale out (gen_mpi).
#include <mpi.h>

#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/cluster.h"
#include "core/error.h"

namespace gen {
namespace {

void check(int status, const char* call) {
  if (status != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(status, text, &length);
    throw Error("mpi", fmt::format("{} failed: {}", call, std::string(text, static_cast<size_t>(length))));
  }
}

// Adds the seconds of its lifetime to a counter: the time spent in an exchange.
class Timed {
 public:
  explicit Timed(double& total) : total_(total), start_(MPI_Wtime()) {}
  ~Timed() { total_ += MPI_Wtime() - start_; }

 private:
  double& total_;
  double start_;
};

class MpiCluster : public Cluster {
 public:
  MpiCluster() {
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready) check(MPI_Init(nullptr, nullptr), "MPI_Init");
    // Errors come back as codes (and become one line), not as MPI's abort.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    std::atexit([] {
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Finalize();
    });
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // Rabenseifner's all-reduce: a reduce-scatter by recursive halving, then an all-gather by
  // recursive doubling. At level l ranks r and r ^ 2^(l-1) split the stretch they both hold in
  // two, each keeps one half and adds the partner's copy of it: so every value is summed in the
  // binary tree over ranks (pairs, then pairs of pairs), and each rank sends 2 (N - 1) / N of the
  // buffer in all, not log2(N) times all of it. The gather only copies.
  void tree_sum(float* data, size_t n) override {
    if (size_ == 1 || n == 0) return;
    {
      // Waiting for the slowest rank, timed apart from the exchange itself.
      Timed waiting(wait_seconds_);
      check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
    }
    Timed timed(exchange_seconds_);
    if ((size_ & (size_ - 1)) != 0)
      throw Error("mpirun", fmt::format("{} ranks: the gradient sum needs a power of two", size_));
    if (n > static_cast<size_t>(INT32_MAX)) throw Error("mpi", "a gradient of more than 2^31 values");
    struct Stretch {
      size_t begin, end;
    };
    std::vector<Stretch> held;  // what this rank held before each level
    size_t begin = 0, end = n;
    for (int level = 1; level < size_; level <<= 1) {
      const int partner = rank_ ^ level;
      const size_t middle = begin + (end - begin) / 2;
      const bool low = (rank_ & level) == 0;
      const size_t keep_begin = low ? begin : middle, keep_end = low ? middle : end;
      const size_t give_begin = low ? middle : begin, give_end = low ? end : middle;
      other_.resize(keep_end - keep_begin);
      check(MPI_Sendrecv(data + give_begin, static_cast<int>(give_end - give_begin), MPI_FLOAT, partner, level,
                         other_.data(), static_cast<int>(keep_end - keep_begin), MPI_FLOAT, partner, level,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE),
            "MPI_Sendrecv");
      // a + b rounds as b + a: the partner that holds the other half computes its sums alike.
      float* d = data + keep_begin;
      const float* o = other_.data();
      for (size_t i = 0; i < keep_end - keep_begin; ++i) d[i] += o[i];
      held.push_back({begin, end});
      begin = keep_begin, end = keep_end;
    }
    // The gather, levels in reverse: give the stretch this rank has summed, take the partner's.
    for (int level = size_ >> 1, k = static_cast<int>(held.size()) - 1; level >= 1; level >>= 1, --k) {
      const int partner = rank_ ^ level;
      const Stretch whole = held[static_cast<size_t>(k)];
      const size_t other_begin = begin == whole.begin ? end : whole.begin;
      const size_t other_end = begin == whole.begin ? whole.end : begin;
      check(MPI_Sendrecv(data + begin, static_cast<int>(end - begin), MPI_FLOAT, partner, size_ + level,
                         data + other_begin, static_cast<int>(other_end - other_begin), MPI_FLOAT, partner,
                         size_ + level, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
            "MPI_Sendrecv");
      begin = whole.begin, end = whole.end;
    }
  }

  void gather(const double* mine, size_t n, double* all) override {
    Timed timed(exchange_seconds_);
    check(MPI_Allgather(mine, static_cast<int>(n), MPI_DOUBLE, all, static_cast<int>(n), MPI_DOUBLE, MPI_COMM_WORLD),
          "MPI_Allgather");
  }

  bool any(bool flag) override {
    Timed timed(exchange_seconds_);
    int mine = flag ? 1 : 0, result = 0;
    check(MPI_Allreduce(&mine, &result, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    return result != 0;
  }

  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

  void fail(int code) override {
    if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
  }

 private:
  int rank_ = 0, size_ = 1;
  std::vector<float> other_;
};

}  // namespace

std::unique_ptr<Cluster> make_mpi_cluster() { return std::make_unique<MpiCluster>(); }

}  // namespace gen
