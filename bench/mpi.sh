#!/usr/bin/env bash
# Data parallelism two ways on this machine, side by side in one run: one process on 2 threads
# against mpirun -np 2 with one thread each (the same shards, the same bytes), for the nanoGPT
# recipe (gtrain: 4 layers, 128 wide, context 64, batch 12 = 2 shards of 384 tokens) and the
# diffusion U-Net (gdiffuse train: channels 32/64/128, batch 64 = 4 shards of 16 images) and the
# DCGAN (ggan train: batch 64 = 2 shards of 32 images, batch norm summed across them). Reports
# ms per step after a warmup (each side's best of REPEAT alternating runs), the time rank 0
# spent exchanging gradients per step (gen's tree sum over MPI, plus waiting), and the
# gradient's size. Traffic stays on this machine (shared memory).
# Usage: mpi.sh BUILD CORPUS [REPEAT]
set -euo pipefail
build=$1
corpus=$2
repeat=${3:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$build/tools/gtok" train -q --model-type char --no-byte-fallback "$corpus" -o "$work/char.model"
"$build/tools/gtok" encode -q --binary -m "$work/char.model" "$corpus" -o "$work/ids"

# ms per step between step `from` and the last, from the log's seconds column ($1 the log, $2
# the column, $3 from); the exchange time from the final report on stderr ($4).
per_step() { awk -F'\t' -v c="$2" -v from="$3" 'NR == from + 1 {a = $c; s = $1} END {printf "%.2f", 1000 * ($c - a) / ($1 - s)}' "$1"; }
exchange() { sed -n 's/.*spent \([0-9.]*\) ms a step exchanging.*and \([0-9.]*\) ms waiting.*/\1 \2/p' "$1"; }

# launch LAYOUT TOOL ARGS...: one process on 2 threads, or 2 ranks of one thread.
launch() {
  local layout=$1
  shift
  if [ "$layout" = threads ]; then "$@" --threads 2; else mpirun -np 2 "$@" --threads 1; fi
}
gtrain_run() {  # LAYOUT: a run of 260 steps; prints "ms exchange"
  launch "$1" "$build/tools/gtrain" --tokenizer "$work/char.model" --steps 260 --eval-every 1000000 \
    --log "$work/g.tsv" "$work/ids" -o "$work/lm.st" 2>"$work/g.err"
  echo "$(per_step "$work/g.tsv" 9 60) $(exchange "$work/g.err")"
}
gdiffuse_run() {
  launch "$1" "$build/tools/gdiffuse" train --steps 15 --limit 10000 --log "$work/d.tsv" -o "$work/d.st" 2>"$work/d.err"
  echo "$(per_step "$work/d.tsv" 6 5) $(exchange "$work/d.err")"
}
ggan_run() {
  launch "$1" "$build/tools/ggan" train --steps 30 --limit 10000 --log "$work/a.tsv" -o "$work/a.st" 2>"$work/a.err"
  echo "$(per_step "$work/a.tsv" 8 5) $(exchange "$work/a.err")"
}
best() { sort -n -k1,1 | head -1; }

lscpu | sed -n 's/^Model name: *//p'
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}; best of $repeat alternating runs"
printf '%-10s %-26s %10s %12s %10s\n' model layout "ms/step" "exchange ms" "wait ms"
for model in gtrain gdiffuse ggan; do
  : >"$work/threads" && : >"$work/ranks"
  for _ in $(seq "$repeat"); do
    ${model}_run threads >>"$work/threads"
    ${model}_run ranks >>"$work/ranks"
  done
  read -r t _ < <(best <"$work/threads")
  read -r r x wait < <(best <"$work/ranks")
  printf '%-10s %-26s %10s %12s %10s\n' "$model" "1 process, 2 threads" "$t" "-" "-"
  printf '%-10s %-26s %10s %12s %10s\n' "$model" "mpirun -np 2, 1 thread" "$r" "$x" "$wait"
  awk -v t="$t" -v r="$r" -v m="$model" 'BEGIN {printf "%-10s ranks/threads time ratio %.3f\n", m, r / t}'
done
