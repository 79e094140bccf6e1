#!/usr/bin/env bash
# The portable build (make package: a shared libgen.so.0 for x86-64, x86-64-v3 and x86-64-v4,
# picked by the loader) against the native one (-march=native, static), side by side: the
# training steps of gtrain (nanoGPT's CPU recipe), gdiffuse (batch 64) and ggan (batch 64),
# and gsample's 500 tokens with its start-up. Each figure is the best of ROUNDS alternating runs,
# with the environment as it is and with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset.
# PORTABLE is make package's build folder (tools/ in it), or /usr with the package installed
# (bin/ in it). The build folder's tools find libgen.so.0 through their RUNPATH, and the loader
# then looks for every other library there too (and in its glibc-hwcaps folders: 174 failed
# opens a start here): the installed package's start-up is the one a user gets.
# Usage: portable.sh NATIVE_BUILD PORTABLE CORPUS [ROUNDS]
set -euo pipefail
native=$1
portable=$2
corpus=$3
rounds=${4:-2}
tool() { if [ -x "$1/tools/$2" ]; then echo "$1/tools/$2"; else echo "$1/bin/$2"; fi; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$native/tools/gtok" train -q --model-type char --no-byte-fallback "$corpus" -o "$work/char.model"
"$native/tools/gtok" encode -q --binary -m "$work/char.model" "$corpus" -o "$work/ids"

# ms per step after the warmup steps, from a trainer's log (its last column: seconds).
per_step() {  # LOG WARMUP STEPS
  awk -F'\t' -v w="$2" -v n="$3" 'NR == w + 1 {a = $NF} END {printf "%.2f\n", 1000 * ($NF - a) / n}' "$1"
}
gtrain_ms() {
  "$(tool "$1" gtrain)" -q --tokenizer "$work/char.model" --steps 210 --eval-every 1000000 --threads 2 \
    --log "$work/g.tsv" "$work/ids" -o "$work/lm.st"
  per_step "$work/g.tsv" 10 200
}
gdiffuse_ms() {
  "$(tool "$1" gdiffuse)" train -q --steps 23 --threads 2 --log "$work/d.tsv" -o "$work/d.st"
  per_step "$work/d.tsv" 3 20
}
ggan_ms() {
  "$(tool "$1" ggan)" train -q --steps 110 --threads 2 --log "$work/a.tsv" -o "$work/a.st"
  per_step "$work/a.tsv" 10 100
}
gsample_ms() {  # the whole process: start-up, the checkpoint, 500 tokens
  local start end
  start=$(date +%s%N)
  "$(tool "$1" gsample)" "$work/lm.st" --prompt "ROMEO:" -n 500 --seed 1 --threads 2 >/dev/null
  end=$(date +%s%N)
  echo $(((end - start) / 1000)) | awk '{printf "%.2f\n", $1 / 1000}'
}
best() { sort -g | head -1; }

echo "native: $("$(tool "$native" gtrain)" --version | sed -n 2p)"
echo "portable: $("$(tool "$portable" gtrain)" --version | sed -n 2p) (the loader's pick on this CPU), $(tool "$portable" gtrain)"
for mode in as-is unset; do
  if [ $mode = unset ]; then unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; fi
  echo
  echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}; best of $rounds"
  printf '%-26s %10s %10s %9s\n' "ms" native portable portable/native
  gtrain_ms "$native" >/dev/null  # the lm.st gsample reads, and a warm page cache
  for job in gtrain gdiffuse ggan gsample; do
    : >"$work/n" && : >"$work/p"
    for ((r = 0; r < rounds; r++)); do
      "${job}_ms" "$native" >>"$work/n"
      "${job}_ms" "$portable" >>"$work/p"
    done
    n=$(best <"$work/n")
    p=$(best <"$work/p")
    label=$job
    case $job in
      gtrain) label="gtrain step (recipe)" ;; gdiffuse) label="gdiffuse step (batch 64)" ;;
      ggan) label="ggan step (batch 64)" ;; gsample) label="gsample 500 tokens" ;;
    esac
    awk -v l="$label" -v n="$n" -v p="$p" 'BEGIN {printf "%-26s %10.2f %10.2f %9.3f\n", l, n, p, p / n}'
  done
done
