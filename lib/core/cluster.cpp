#include "core/cluster.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace gen {

void Cluster::gather(const double* mine, size_t n, double* all) { std::copy(mine, mine + n, all); }

void Cluster::gather_rows(const float* mine, int64_t rows, int64_t width, float* all) {
  std::copy(mine, mine + rows * width, all);
}

Share share_of(int64_t n, const Cluster& cluster) {
  const int64_t r = cluster.rank(), size = cluster.size();
  return {n * r / size, n * (r + 1) / size};
}

std::vector<float> gather_shares(Cluster& cluster, const float* mine, int64_t n, int64_t width) {
  std::vector<float> all(static_cast<size_t>(n * width));
  cluster.gather_rows(mine, share_of(n, cluster).size(), width, all.data());
  return all;
}

// No MPI linked in: a tool started by mpirun without it runs as one process.
__attribute__((weak)) std::unique_ptr<Cluster> make_mpi_cluster() { return nullptr; }

namespace {
std::unique_ptr<Cluster> g_cluster;
}  // namespace

Cluster& cluster() {
  if (!g_cluster) {
    if (std::getenv("OMPI_COMM_WORLD_SIZE")) g_cluster = make_mpi_cluster();
    if (!g_cluster) g_cluster = std::make_unique<Cluster>();
  }
  return *g_cluster;
}

Cluster* cluster_if_started() { return g_cluster.get(); }

}  // namespace gen
