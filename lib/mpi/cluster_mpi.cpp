// The MPI cluster (core/cluster.h), linked only into the tools that scale out (gen_mpi).
#include <mpi.h>

#include <fmt/format.h>

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
    // In pieces of 256 KiB, each added as it arrives (still in cache), into a buffer kept from
    // step to step (a fresh one cost page faults every step).
    constexpr size_t kPiece = size_t{1} << 16;
    other_.resize(std::min(n, kPiece));
    for (int level = 1; level < size_; level <<= 1) {
      const int partner = rank_ ^ level;
      for (size_t at = 0; at < n; at += kPiece) {
        const int count = static_cast<int>(std::min(kPiece, n - at));
        check(MPI_Sendrecv(data + at, count, MPI_FLOAT, partner, level, other_.data(), count, MPI_FLOAT, partner,
                           level, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
              "MPI_Sendrecv");
        // a + b rounds as b + a: both partners get the same bits.
        float* d = data + at;
        const float* o = other_.data();
        for (int i = 0; i < count; ++i) d[i] += o[i];
      }
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
