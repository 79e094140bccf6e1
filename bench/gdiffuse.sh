#!/usr/bin/env bash
# Training and sampling speed of gdiffuse's U-Net (channels 32/64/128 on 28x28 Fashion-MNIST,
# batch 64) against the same network in PyTorch (Debian's python3-torch; bench/gdiffuse_torch.py,
# parameter names identical to ours, initial weights loaded from a gdiffuse checkpoint and the
# forward pass checked against ours first), side by side in one run, with the environment as it
# is and with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset. PyTorch runs with
# ATEN_CPU_CAPABILITY=avx512 (avx2 on a CPU without it) at 1 and 2 threads and its best is taken. Reports ms per training
# step (forward, backward, clipping, AdamW, EMA) after 5 warmup steps, GFLOP/s (3 x forward
# FLOPs x 64 / time, the FLOPs of direct convolutions: gdiffuse's Winograd layers do fewer, so
# its figure is an effective rate) with its share of the fp32 FMA peak measured at the start of the run
# (bench/peak.cpp, on THREADS threads), and the time for 64 images with guidance (batch 128):
# DDIM 50 steps on both sides, and gdiffuse's DPM-Solver++(2M) at 15 and 10 steps (the steps that
# give DDIM 50's accuracy and FID: examples/fashion-diffusion, make samplers).
# Timings on a shared machine vary by 10-15% from run to run: each side runs REPEAT times, in
# alternation, and its best is taken.
# Usage: gdiffuse.sh BUILD [STEPS] [THREADS] [REPEAT]
set -euo pipefail
build=$1
steps=${2:-20}
threads=${3:-2}
repeat=${4:-3}
warmup=5
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
aten=$(aten_isa)  # PyTorch's kernels: its best for this CPU, or AVX2 with BENCH_ISA=avx2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gd=$build/tools/gdiffuse

# The helper that runs our forward pass for the sanity check, built against the library.
c++ -std=c++20 -O2 -march="$bench_march" -I"$here/../lib" "$here/gdiffuse_forward.cpp" "$build/lib/libgen.a" \
  $(pkg-config --libs fmt sentencepiece cairo libpng zlib) -lgif -fopenmp -o "$work/forward"
# Initial weights: one step (lr 1e-3 without warmup, so that the zero-initialized output
# convolution is not zero any more and the check sees every layer).
"$gd" train -q --steps 1 --warmup 0 --limit 1000 --threads "$threads" -o "$work/init.st"
ATEN_CPU_CAPABILITY=$aten /usr/bin/python3 "$here/gdiffuse_torch.py" check "$work/init.st" "$work/forward"
flops=$("$work/forward" "$work/init.st" /dev/stdin /dev/null < <(python3 -c "
import struct, sys; sys.stdout.buffer.write(struct.pack('<q', 1) + bytes(4 * (784 + 2)))"))

gdiffuse_ms() {  # mean ms per step after the warmup, from gdiffuse's log
  "$gd" train -q --steps $((steps + warmup)) --limit 10000 --threads "$threads" --log "$work/log.tsv" \
    -o "$work/run.st"
  awk -F'\t' -v w="$warmup" -v n="$steps" 'NR == w + 1 {a = $6} END {printf "%.1f\n", 1000 * ($6 - a) / n}' \
    "$work/log.tsv"
}
torch_ms() {  # the best of 1 and 2 threads
  best=
  for t in 1 2; do
    ms=$(ATEN_CPU_CAPABILITY=$aten OMP_NUM_THREADS=$t TORCH_THREADS=$t \
      /usr/bin/python3 "$here/gdiffuse_torch.py" "$@")
    best=$(awk -v a="$best" -v b="$ms" 'BEGIN {print (a == "" || b < a) ? b : a}')
  done
  echo "$best"
}
gdiffuse_sample_ms() {  # gdiffuse_sample_ms SAMPLER STEPS
  local start end
  start=$(date +%s.%N)
  "$gd" sample -q "$work/init.st" --prompt 3 --guidance 3 -n 64 --sampler "$1" --steps "$2" --threads "$threads" \
    -o "$work/s.png"
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN {printf "%.0f\n", 1000 * (b - a)}'
}

echo "U-Net 32/64/128 on 28x28, batch 64: $(awk -v f="$flops" 'BEGIN {printf "%.0f", f / 1e6}') MFLOP per image" \
  "forward; gdiffuse --threads $threads; load $(cut -d' ' -f1 /proc/loadavg)"
machine
peak=$(peak_gflops "$threads")
echo "fp32 FMA peak measured now: $peak GFLOP/s on $threads threads"
printf '%-34s %11s %11s %8s %14s %14s\n' environment "gdiffuse ms" "pytorch ms" speedup "gdiffuse GF/s" "pytorch GF/s"
for mode in as-is unset; do
  if [ $mode = unset ]; then
    run=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
    label="OPENBLAS_CORETYPE, L2_SIZE unset"
  else
    run=(env)
    label="as is (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
  fi
  export -f gdiffuse_ms torch_ms gdiffuse_sample_ms
  export gd work here steps warmup threads aten
  g= t=
  for _ in $(seq "$repeat"); do
    g=$(awk -v a="$g" -v b="$("${run[@]}" bash -c gdiffuse_ms)" 'BEGIN {print (a == "" || b < a) ? b : a}')
    t=$(awk -v a="$t" -v b="$("${run[@]}" bash -c 'torch_ms train "$work/init.st" "$steps"')" \
      'BEGIN {print (a == "" || b < a) ? b : a}')
  done
  awk -v l="$label" -v g="$g" -v t="$t" -v f="$flops" -v p="$peak" 'BEGIN {
    printf "%-34s %11.1f %11.1f %8.2f %7.1f (%2.0f%%) %7.1f (%2.0f%%)\n", l, g, t, t / g,
      3 * f * 64 / g / 1e6, 300 * f * 64 / g / 1e6 / p, 3 * f * 64 / t / 1e6, 300 * f * 64 / t / 1e6 / p}'
  if [ $mode = as-is ]; then
    # The sampling, whole process: 64 guided images (each denoiser call 128 images through
    # the U-Net forward). GF/s counts the forward passes' FLOPs (128 images a call).
    ts=$("${run[@]}" bash -c 'torch_ms sample "$work/init.st"')
    sampling=()
    for run_ in ddim:50 dpm++2m:15 dpm++2m:10; do
      gs=$("${run[@]}" bash -c "gdiffuse_sample_ms ${run_%:*} ${run_#*:}")
      sampling+=("$(awk -v r="$run_" -v g="$gs" -v t="$ts" -v f="$flops" -v p="$peak" -v k="${run_#*:}" 'BEGIN {
        printf "  gdiffuse %-11s %6.0f ms, %5.1f GF/s (%2.0f%%): %.2fx PyTorch DDIM 50 (%.0f ms)\n", r, g,
          128 * k * f / g / 1e6, 12800 * k * f / g / 1e6 / p, t / g, t}')")
    done
  fi
done
echo "sampling 64 guided images (32 images a forward pass), as is:"
printf '%s\n' "${sampling[@]}"
echo "speedup: PyTorch's ms per step / gdiffuse's (above 1: gdiffuse is faster); each the best of $repeat runs"
echo "(NN%): the share of the measured peak"
