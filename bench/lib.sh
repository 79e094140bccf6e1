# What the benches share: the machine's measured peak (bench/peak.cpp), built once with the flags
# of a native Release build, so that every figure can be given as a share of it.
#   source "$here/lib.sh"
#   peak=$(peak_gflops 2)      # fp32 FMA GFLOP/s on 2 threads, measured now
#   machine                    # one line: the CPU, its vector width, the peak figures
PEAK_BIN=${PEAK_BIN:-/tmp/gen-bench-peak}
bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

peak_build() {
  if [ ! -x "$PEAK_BIN" ] || [ "$bench_here/peak.cpp" -nt "$PEAK_BIN" ]; then
    c++ -std=c++20 -O3 -march=native -pthread "$bench_here/peak.cpp" -o "$PEAK_BIN"
  fi
}
peak_gflops() { peak_build && "$PEAK_BIN" --gflops "$1"; }
peak_gbps() { peak_build && "$PEAK_BIN" --gbps "$1"; }

# The CPU and instruction set that produced the figures below it.
machine() {
  local isa=AVX2
  grep -qw avx512f /proc/cpuinfo && isa=AVX-512
  grep -qw avx2 /proc/cpuinfo || isa="no AVX2"
  echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $isa"
}
