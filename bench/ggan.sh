#!/usr/bin/env bash
# Training speed of ggan's DCGAN (generator z=64 -> 256x7x7 -> 128x14x14 -> 1x28x28, 1.33M
# parameters; discriminator 64/128 channels, 0.14M; batch 64, BCE) against the same networks in
# PyTorch (Debian's python3-torch; bench/ggan_torch.py), side by side in one run, with the
# environment as it is and with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset. A step is one
# discriminator step (real and fake) and one generator step. PyTorch runs with
# ATEN_CPU_CAPABILITY=avx512 (avx2 on a CPU without it) at 1 and 2 threads and its best is taken; ggan at 1 and 2 threads,
# its best taken too. Reports ms per step (mean after warmup) and GFLOP/s, with its share of the
# fp32 FMA peak measured at the start of the run (bench/peak.cpp, 2 threads).
# Usage: ggan.sh BUILD [STEPS]
set -euo pipefail
build=$1
steps=${2:-30}
warmup=5
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
aten=$(aten_isa)  # PyTorch's kernels: its best for this CPU, or AVX2 with BENCH_ISA=avx2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gg=$build/tools/ggan

ggan_ms() {  # the best of 1 and 2 threads: mean ms per step after the warmup, from ggan's log
  best=
  for t in 1 2; do
    "$gg" train -q --steps $((steps + warmup)) --limit 10000 --threads $t --log "$work/log.tsv" -o "$work/run.st"
    ms=$(awk -F'\t' -v w="$warmup" -v n="$steps" 'NR == w + 1 {a = $8} END {printf "%.1f\n", 1000 * ($8 - a) / n}' \
      "$work/log.tsv")
    echo "  ggan $t thread(s): $ms ms" >&2
    best=$(awk -v a="$best" -v b="$ms" 'BEGIN {print (a == "" || b < a) ? b : a}')
  done
  echo "$best"
}
torch_ms() {  # the best of 1 and 2 threads (the median step of each run)
  best=
  for t in 1 2; do
    ms=$(ATEN_CPU_CAPABILITY=$aten OMP_NUM_THREADS=$t /usr/bin/python3 "$here/ggan_torch.py" --threads $t \
      --steps "$steps" --warmup "$warmup" --json | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["ms_mean"])')
    echo "  pytorch $t thread(s): $ms ms" >&2
    best=$(awk -v a="$best" -v b="$ms" 'BEGIN {print (a == "" || b < a) ? b : a}')
  done
  echo "$best"
}

flops=17.96e9  # per step: 64 x (3 x 53.79 MFLOP generator + 9 x 13.26 MFLOP discriminator)
machine
peak=$(peak_gflops 2)
echo "fp32 FMA peak measured now: $peak GFLOP/s on 2 threads"
echo "DCGAN on 28x28, batch 64: $(awk -v f=$flops 'BEGIN {printf "%.1f", f / 1e9}') GFLOP per step (D step + G step);" \
  "load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-34s %9s %11s %8s %14s %14s\n' environment "ggan ms" "pytorch ms" speedup "ggan GF/s" "pytorch GF/s"
for mode in as-is unset; do
  if [ $mode = unset ]; then
    run=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
    label="OPENBLAS_CORETYPE, L2_SIZE unset"
  else
    run=(env)
    label="as is (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
  fi
  export -f ggan_ms torch_ms
  export gg work here steps warmup aten
  g=$("${run[@]}" bash -c ggan_ms)
  t=$("${run[@]}" bash -c torch_ms)
  awk -v l="$label" -v g="$g" -v t="$t" -v f="$flops" -v p="$peak" 'BEGIN {
    printf "%-34s %9.1f %11.1f %8.2f %7.1f (%2.0f%%) %7.1f (%2.0f%%)\n", l, g, t, t / g,
      f / g / 1e6, 100 * f / g / 1e6 / p, f / t / 1e6, 100 * f / t / 1e6 / p}'
done
echo "(NN%): the share of the measured peak"
echo "speedup: PyTorch's ms per step / ggan's (above 1: ggan is faster)"
