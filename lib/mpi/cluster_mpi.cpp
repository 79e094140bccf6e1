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
    // Funneled: only the main thread calls MPI (ShardTeam's shard 0 adds up batch normalization's
    // statistics on it, while the other shards' threads wait).
    int provided = 0;
    if (!ready) check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
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
    rabenseifner(data, n, MPI_FLOAT, other_);
  }

  void tree_sum(double* data, size_t n) override {
    if (size_ == 1 || n == 0) return;
    Timed timed(exchange_seconds_);
    rabenseifner(data, n, MPI_DOUBLE, other_doubles_);
  }

  void gather(const double* mine, size_t n, double* all) override {
    Timed timed(exchange_seconds_);
    check(MPI_Allgather(mine, static_cast<int>(n), MPI_DOUBLE, all, static_cast<int>(n), MPI_DOUBLE, MPI_COMM_WORLD),
          "MPI_Allgather");
  }

  void gather_rows(const float* mine, int64_t rows, int64_t width, float* all) override {
    Timed timed(exchange_seconds_);
    std::vector<int64_t> each(static_cast<size_t>(size_));
    check(MPI_Allgather(&rows, 1, MPI_INT64_T, each.data(), 1, MPI_INT64_T, MPI_COMM_WORLD), "MPI_Allgather");
    std::vector<int> counts(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    int64_t at = 0;
    for (int r = 0; r < size_; ++r) {
      if (at + each[static_cast<size_t>(r)] > INT32_MAX) throw Error("mpi", "more than 2^31 rows to gather");
      counts[static_cast<size_t>(r)] = static_cast<int>(each[static_cast<size_t>(r)]);
      offsets[static_cast<size_t>(r)] = static_cast<int>(at);
      at += each[static_cast<size_t>(r)];
    }
    // Counted in rows (a type of `width` floats): no count overflows an int.
    MPI_Datatype row;
    check(MPI_Type_contiguous(static_cast<int>(width), MPI_FLOAT, &row), "MPI_Type_contiguous");
    check(MPI_Type_commit(&row), "MPI_Type_commit");
    const int status = MPI_Allgatherv(mine, static_cast<int>(rows), row, all, counts.data(), offsets.data(), row,
                                      MPI_COMM_WORLD);
    MPI_Type_free(&row);
    check(status, "MPI_Allgatherv");
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
  // Rabenseifner's all-reduce: a reduce-scatter by recursive halving, then an all-gather by
  // recursive doubling. At level l ranks r and r ^ 2^(l-1) split the stretch they both hold in
  // two, each keeps one half and adds the partner's copy of it: so every value is summed in the
  // binary tree over ranks (pairs, then pairs of pairs), and each rank sends 2 (N - 1) / N of the
  // buffer in all, not log2(N) times all of it. The gather only copies.
  template <typename T>
  void rabenseifner(T* data, size_t n, MPI_Datatype type, std::vector<T>& other) {
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
      other.resize(keep_end - keep_begin);
      check(MPI_Sendrecv(data + give_begin, static_cast<int>(give_end - give_begin), type, partner, level,
                         other.data(), static_cast<int>(keep_end - keep_begin), type, partner, level,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE),
            "MPI_Sendrecv");
      // a + b rounds as b + a: the partner that holds the other half computes its sums alike.
      T* d = data + keep_begin;
      const T* o = other.data();
      for (size_t i = 0; i < keep_end - keep_begin; ++i) d[i] += o[i];
      held.push_back({begin, end});
      begin = keep_begin, end = keep_end;
    }
    // The gather, levels in reverse: give the stretch this rank has summed, take the partner's.
    for (int level = size_ >> 1, k = static_cast<int>(held.size()) - 1; level >= 1; level >>= 1, --k) {
      const int partner = rank_ ^ level;
      const Stretch whole = held[static_cast<size_t>(k)];
      const size_t otherbegin = begin == whole.begin ? end : whole.begin;
      const size_t otherend = begin == whole.begin ? whole.end : begin;
      check(MPI_Sendrecv(data + begin, static_cast<int>(end - begin), type, partner, size_ + level,
                         data + otherbegin, static_cast<int>(otherend - otherbegin), type, partner,
                         size_ + level, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
            "MPI_Sendrecv");
      begin = whole.begin, end = whole.end;
    }
  }

  int rank_ = 0, size_ = 1;
  std::vector<float> other_;
  std::vector<double> other_doubles_;
};

}  // namespace

std::unique_ptr<Cluster> make_mpi_cluster() { return std::make_unique<MpiCluster>(); }

}  // namespace gen
