#include "core/cluster.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace gen {

void Cluster::gather(const double* mine, size_t n, double* all) { std::copy(mine, mine + n, all); }

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
