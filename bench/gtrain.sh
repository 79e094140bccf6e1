#!/usr/bin/env bash
# Training speed of the nanoGPT CPU recipe (4 layers, 4 heads, 128 wide, context 64, batch 12)
# on tinyshakespeare's char ids: gtrain against PyTorch (Debian's python3-torch, at its best
# setting found here: torch 1 thread, OpenBLAS 2 threads, ATEN_CPU_CAPABILITY=avx512 where the CPU has it, else avx2), side by
# side in one run, with the environment as it is and with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE
# unset. Reports milliseconds per step after 10 warmup steps, the ratio, and each side's GFLOP/s
# as a share of the fp32 FMA peak measured at the start of the run (bench/peak.cpp, 2 threads).
# FLOPs per step as nanoGPT's MFU estimate counts them (PaLM, appendix B): (6 N + 12 L d T) per
# token, N the parameters (the tied head counted once, as its product runs once a token).
# Usage: gtrain.sh BUILD CORPUS [STEPS]
set -euo pipefail
build=$1
corpus=$2
steps=${3:-200}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
aten=$(aten_isa)  # PyTorch's kernels: its best for this CPU, or AVX2 with BENCH_ISA=avx2
export layers=4 embd=128 context=64 batch=12  # exported: the unset runs are subshells
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Without byte fallback the char model has 68 pieces (65 characters, <unk>, <s>, </s>),
# close to nanoGPT's 65, so that the output layer costs what it costs there.
"$build/tools/gtok" train -q --model-type char --no-byte-fallback "$corpus" -o "$work/char.model"
"$build/tools/gtok" encode -q --binary -m "$work/char.model" "$corpus" -o "$work/ids"
vocab=$(($("$build/tools/gtok" vocab -m "$work/char.model" | wc -l) - 1))

gtrain_ms() {  # mean ms per step after step 10, from gtrain's log
  "$build/tools/gtrain" -q --tokenizer "$work/char.model" --steps $((steps + 10)) --eval-every 1000000 \
    --layers "$layers" --heads 4 --embd "$embd" --context "$context" --batch "$batch" \
    --threads 2 --log "$work/log.tsv" "$work/ids" -o "$work/lm.st"
  awk -F'\t' -v n="$steps" 'NR == 11 {a = $9} END {printf "%.2f\n", 1000 * ($9 - a) / n}' "$work/log.tsv"
}
torch_ms() {
  OPENBLAS_NUM_THREADS=2 ATEN_CPU_CAPABILITY=$aten TORCH_THREADS=1 \
    /usr/bin/python3 "$here/gtrain_torch.py" "$work/ids" "$vocab" "$steps"
}

machine
peak=$(peak_gflops 2)
flops=$(awk -v L=$layers -v d=$embd -v T=$context -v B=$batch -v V="$vocab" \
  'BEGIN {N = L * (12 * d * d + 13 * d) + V * d + 2 * d; printf "%.0f", (6 * N + 12 * L * d * T) * B * T}')
echo "fp32 FMA peak measured now: $peak GFLOP/s on 2 threads"
echo "nanoGPT CPU recipe, vocab $vocab, $steps steps after 10 warmup; ms per step ($((batch * context)) tokens," \
  "$(awk -v f="$flops" 'BEGIN {printf "%.2f", f / 1e9}') GFLOP)"
printf '%-34s %10s %10s %8s %14s %14s\n' environment gtrain pytorch speedup "gtrain GF/s" "pytorch GF/s"
for mode in as-is unset; do
  if [ $mode = unset ]; then
    g=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bash -c "set -eo pipefail; $(declare -f gtrain_ms); build='$build' work='$work' steps=$steps gtrain_ms")
    t=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE bash -c "$(declare -f torch_ms); here='$here' work='$work' vocab=$vocab steps=$steps aten=$aten torch_ms")
    label="OPENBLAS_CORETYPE, L2_SIZE unset"
  else
    g=$(gtrain_ms)
    t=$(torch_ms)
    label="as is (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
  fi
  awk -v l="$label" -v g="$g" -v t="$t" -v f="$flops" -v p="$peak" 'BEGIN {
    printf "%-34s %10.2f %10.2f %8.2f %7.1f (%2.0f%%) %7.1f (%2.0f%%)\n", l, g, t, t / g,
      f / g / 1e6, 100 * f / g / 1e6 / p, f / t / 1e6, 100 * f / t / 1e6 / p}'
done
echo "(NN%): the share of the measured peak"
echo "speedup: PyTorch's ms per step / gtrain's (above 1: gtrain is faster)"
