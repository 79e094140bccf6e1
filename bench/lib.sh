# What the benches share: the machine's measured peak (bench/peak.cpp), built once with the flags
# of a native Release build, so that every figure can be given as a share of it.
#   source "$here/lib.sh"
#   peak=$(peak_gflops 2)      # fp32 FMA GFLOP/s on 2 threads, measured now
#   machine                    # one line: the CPU, its vector width, the peak figures
#   aten=$(aten_isa)           # the ATEN_CPU_CAPABILITY PyTorch runs with
# BENCH_ISA=avx2 measures an AVX2 build (BUILD=../build-avx2: cmake -DGEN_MARCH=x86-64-v3, as make
# test-avx2 configures it) on a CPU that also has AVX-512, the nearest it comes to an AVX2-only
# machine (the same cores and caches, half the vector width): the peak
# is built for AVX2 too and PyTorch runs its AVX2 kernels (its OpenBLAS follows OPENBLAS_CORETYPE:
# Haswell's AVX2 kernels where the environment sets it, AVX-512's on the lines with it unset).
BENCH_ISA=${BENCH_ISA:-native}
case $BENCH_ISA in
  native) bench_march=native ;;
  avx2) bench_march=x86-64-v3 ;;
  *) echo "lib.sh: BENCH_ISA is native or avx2, not '$BENCH_ISA'" >&2; exit 2 ;;
esac
PEAK_BIN=${PEAK_BIN:-/tmp/gen-bench-peak-$BENCH_ISA}
bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

peak_build() {
  if [ ! -x "$PEAK_BIN" ] || [ "$bench_here/peak.cpp" -nt "$PEAK_BIN" ]; then
    c++ -std=c++20 -O3 -march=$bench_march -mtune=native -pthread "$bench_here/peak.cpp" -o "$PEAK_BIN"
  fi
}
# PyTorch's best kernels for this CPU: AVX-512 where it has it (forcing them elsewhere is
# SIGILL), else AVX2; AVX2 with BENCH_ISA=avx2.
aten_isa() {
  if [ "$BENCH_ISA" = avx2 ] || ! grep -qw avx512f /proc/cpuinfo; then echo avx2; else echo avx512; fi
}
peak_gflops() { peak_build && "$PEAK_BIN" --gflops "$1"; }
peak_gbps() { peak_build && "$PEAK_BIN" --gbps "$1"; }

# The CPU and instruction set that produced the figures below it.
machine() {
  local isa=AVX2
  grep -qw avx512f /proc/cpuinfo && isa=AVX-512
  grep -qw avx2 /proc/cpuinfo || isa="no AVX2"
  [ "$BENCH_ISA" = avx2 ] && isa="AVX-512, measured as AVX2 (BENCH_ISA=avx2: an x86-64-v3 build, AVX2 peak)"
  # A virtual machine's CPU is often only "AMD EPYC": the family says which core it is.
  local cpu family core=""
  cpu=$(lscpu)
  family=$(sed -n 's/^CPU family: *//p' <<<"$cpu" | head -1)
  if grep -q AuthenticAMD /proc/cpuinfo; then
    case $family in
      25) core="Zen 3"; grep -qw avx512f /proc/cpuinfo && core="Zen 4" ;;
      26) core="Zen 5" ;;
    esac
  fi
  echo "CPU: $(sed -n 's/^Model name: *//p' <<<"$cpu" | head -1) (family $family, model $(sed -n 's/^Model: *//p' <<<"$cpu" | head -1)${core:+: $core}), $(nproc) cores, $isa"
}
