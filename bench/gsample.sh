#!/usr/bin/env bash
# Generation speed of the nanoGPT CPU recipe's model (4 layers, 4 heads, 128 wide, context 64, char
# tokenizer on tinyshakespeare): gsample against PyTorch (Debian's python3-torch, the generators of
# gsample_torch.py, ATEN_CPU_CAPABILITY=avx512 (avx2 without it), the best of 1 and 2 threads), with the KV cache and
# without (the whole window every token), side by side in one run, with the environment as it is
# and with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset. The weights come from a few training steps:
# speed does not depend on them.
# Reports tokens per second, the best of REPEAT runs (PyTorch: of 3, its runs are long) at 1 and 2
# threads. gsample's is the whole process (startup included, nothing subtracted: it prints ids, no
# text); PyTorch's is its generation loop alone (no import, no loading), which favors PyTorch.
# gsample's startup (a run of -n 1) and its cost per token after it are shown too.
# Usage: gsample.sh BUILD CORPUS [TOKENS] [REPEAT]
set -euo pipefail
build=$1
corpus=$2
tokens=${3:-500}
repeat=${4:-7}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
aten=$(aten_isa)  # PyTorch's kernels: its best for this CPU, or AVX2 with BENCH_ISA=avx2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# As bench/gtrain.sh: a char model without byte fallback (68 pieces, close to nanoGPT's 65).
"$build/tools/gtok" train -q --model-type char --no-byte-fallback "$corpus" -o "$work/char.model"
"$build/tools/gtok" encode -q --binary -m "$work/char.model" "$corpus" -o "$work/ids"
vocab=$(($("$build/tools/gtok" vocab -m "$work/char.model" | wc -l) - 1))
"$build/tools/gtrain" -q --tokenizer "$work/char.model" --layers 4 --heads 4 --embd 128 --context 64 --steps 20 \
  --eval-every 1000000 --threads 2 "$work/ids" -o "$work/lm.st"

# Seconds for the fastest of $repeat runs of gsample at each of 1 and 2 threads, and the threads.
# No prompt (</dev/null): generation starts from a newline, as PyTorch's from one token.
gsample_best() {  # N [--no-cache]
  local n=$1 best="" best_threads=0 begin end s
  for threads in 1 2; do
    for _ in $(seq "$repeat"); do
      begin=$(date +%s%N)
      "$build/tools/gsample" "$work/lm.st" -n "$n" --seed 1 --ids --threads $threads "${@:2}" </dev/null >/dev/null
      end=$(date +%s%N)
      s=$(awk -v a="$begin" -v b="$end" 'BEGIN {printf "%.6f", (b - a) / 1e9}')
      if [ -z "$best" ] || awk -v s="$s" -v b="$best" 'BEGIN {exit !(s < b)}'; then
        best=$s
        best_threads=$threads
      fi
    done
  done
  echo "$best $best_threads"
}
measure() {  # prints: cached uncached (tokens/s), their threads, startup (ms), torch cached, uncached, threads
  local c u s
  c=$(gsample_best "$tokens")
  u=$(gsample_best "$tokens" --no-cache)
  s=$(gsample_best 1)
  local t
  t=$(ATEN_CPU_CAPABILITY=$aten TORCH_THREADS="1 2" /usr/bin/python3 "$here/gsample_torch.py" "$work/lm.st" \
    "$tokens" 3 | awk '{printf "%s %s ", $2, $3}')
  echo "$c $u $s $t"
}

machine
echo "nanoGPT CPU recipe's model (4 layers, 4 heads, 128 wide, context 64), vocab $vocab: $tokens tokens,"
echo "temperature 1, best of $repeat runs (PyTorch: 3) at 1 and 2 threads (the best thread count in brackets)"
for mode in as-is unset; do
  if [ $mode = unset ]; then
    label="OPENBLAS_CORETYPE, L2_SIZE unset"
    read -r gc gct gu gut gs gst tc tct tu tut < <(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
      bash -c "$(declare -f gsample_best measure); build='$build' work='$work' here='$here' aten=$aten tokens=$tokens \
        repeat=$repeat measure")
  else
    label="as is (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
    read -r gc gct gu gut gs gst tc tct tu tut < <(measure)
  fi
  echo
  echo "$label"
  awk -v n="$tokens" -v gc="$gc" -v gct="$gct" -v gu="$gu" -v gut="$gut" -v gs="$gs" -v tc="$tc" -v tct="$tct" \
    -v tu="$tu" -v tut="$tut" 'BEGIN {
      printf "  %-36s %12s %12s\n", "tokens/s", "KV cache", "no cache"
      printf "  %-36s %8.0f [%d] %8.0f [%d]\n", "gsample (whole process)", n / gc, gct, n / gu, gut
      printf "  %-36s %8.0f [%d] %8.0f [%d]\n", "PyTorch (generation loop)", tc, tct, tu, tut
      printf "  %-36s %12.2f %12.2f\n", "speedup (gsample / PyTorch)", (n / gc) / tc, (n / gu) / tu
      printf "  %-36s %12.1f %12s\n", "gsample startup, -n 1 (ms)", 1000 * gs, ""
      printf "  %-36s %12.1f %12.1f\n", "gsample per token after it (us)", 1e6 * (gc - gs) / (n - 1),
             1e6 * (gu - gs) / (n - 1)
      printf "  %-36s %12.1f %12.1f\n", "PyTorch per token (us)", 1e6 / tc, 1e6 / tu
    }'
done
echo
echo "speedup above 1: gsample is faster (PyTorch's time leaves out its startup, gsample's does not)"

# nanoGPT's GPU config (6 layers, 6 heads, 384 wide, context 256: 10.7M parameters) against the
# machine's limits, measured now: each token reads the blocks' weights (12 L C^2 floats, 42 MB:
# more than a 32 MB L3 holds; all of it from memory is the bound printed, what stays in the L3
# comes faster) and does 2 x 12 L C^2 multiply-adds' FLOPs, twice that with the window's refill
# (half a window of rows every half window of tokens) amortized. gsample only.
"$build/tools/gtrain" -q --tokenizer "$work/char.model" --layers 6 --heads 6 --embd 384 --context 256 --batch 1 \
  --steps 1 --eval-every 1000000 --threads 2 "$work/ids" -o "$work/big.st"
big_tokens=300
gbps=$(peak_gbps 2)
gflops=$(peak_gflops 2)
echo
echo "nanoGPT's GPU config (6 layers, 6 heads, 384 wide, context 256, 10.7M parameters), $big_tokens tokens:"
for threads in 1 2; do
  best_n=""
  best_1=""
  for _ in 1 2 3; do
    for n in 1 $big_tokens; do
      begin=$(date +%s%N)
      "$build/tools/gsample" "$work/big.st" -n $n --seed 1 --ids --threads $threads </dev/null >/dev/null
      end=$(date +%s%N)
      s=$(((end - begin) / 1000))
      if [ $n = 1 ]; then
        [ -z "$best_1" ] || [ "$s" -lt "$best_1" ] && best_1=$s
      else
        [ -z "$best_n" ] || [ "$s" -lt "$best_n" ] && best_n=$s
      fi
    done
  done
  awk -v t="$threads" -v a="$best_1" -v b="$best_n" -v n="$big_tokens" -v bw="$gbps" -v fl="$gflops" 'BEGIN {
    us = (b - a) / (n - 1); bytes = 12 * 6 * 384 * 384 * 4; flops = 2 * 2 * 12 * 6 * 384 * 384
    printf "  %d thread%s: %7.0f us a token after a %.0f ms start; limits (2 threads): all from memory %.0f us (%.0f MB at %.1f GB/s), FLOPs %.0f us (%.0f MFLOP at %.0f GFLOP/s)\n",
      t, t == 1 ? " " : "s", us, a / 1000, 1e6 * bytes / (bw * 1e9), bytes / 1e6, bw, 1e6 * flops / (fl * 1e9), flops / 1e6, fl
  }'
done
