#!/usr/bin/env bash
# gtok encode throughput (MB/s) against sentencepiece's own spm_encode (Debian package
# sentencepiece), on the same model and the same text, in one run. Each contender runs REPEAT
# times, interleaved, and the best time counts (the least disturbed by the shared machine).
# Usage: gtok_encode.sh GTOK CORPUS [REPEAT]
set -euo pipefail
gtok=$1
corpus=$2
repeat=${3:-7}
command -v spm_encode >/dev/null || { echo "spm_encode missing: apt-get install sentencepiece" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bytes=$(stat -c %s "$corpus")

now() { date +%s.%N; }
best_time() {  # best_time NAME: reads the timings collected for NAME
  sort -g "$work/$1.times" | head -1
}
time_once() {  # time_once NAME CMD...: appends one wall time
  local name=$1
  shift
  local start end
  start=$(now)
  "$@" >/dev/null
  end=$(now)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f\n", b - a }' >>"$work/$name.times"
}

echo "corpus: $corpus ($bytes bytes), best of $repeat runs, $(nproc) cores"
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset} (gtok does not use BLAS)"
printf '%-8s %-22s %10s %10s %8s\n' model contender seconds MB/s ratio
for type in bpe char; do
  "$gtok" train -q --model-type $type "$corpus" -o "$work/$type.model"
  rm -f "$work"/*.times
  for ((i = 0; i < repeat; i++)); do
    time_once spm spm_encode --model="$work/$type.model" --output_format=id --input="$corpus"
    time_once gtok1 "$gtok" encode -q --threads 1 -m "$work/$type.model" "$corpus"
    time_once gtok2 "$gtok" encode -q --threads 2 -m "$work/$type.model" "$corpus"
  done
  spm=$(best_time spm)
  for name in spm gtok1 gtok2; do
    t=$(best_time $name)
    case $name in spm) label="spm_encode" ;; gtok1) label="gtok encode, 1 thread" ;; gtok2) label="gtok encode, 2 threads" ;; esac
    awk -v type=$type -v label="$label" -v t="$t" -v bytes="$bytes" -v spm="$spm" \
      'BEGIN { printf "%-8s %-22s %10.3f %10.2f %8.2f\n", type, label, t, bytes / t / 1e6, spm / t }'
  done
done
echo "ratio: spm_encode's time / the contender's (above 1 is faster than spm_encode)"
