#!/usr/bin/env bash
# Samplers and their steps against the quality they reach: for each SAMPLER:STEPS, N guided
# samples per class (the same seed, so the same starting noise for every sampler), scored with
# the classifier (the share in the class asked for) and the Frechet distance to the test set in
# its features; the wall time of the sampling (10 gdiffuse runs of N images). Prints a TSV:
#   sampler  steps  accuracy_%  FID  seconds
# Usage: samplers.sh GDIFFUSE GSCORE MODEL CLASSIFIER WORKDIR N GUIDANCE SEED SAMPLER:STEPS...
set -euo pipefail
gdiffuse=$1 gscore=$2 model=$3 classifier=$4 work=$5 n=$6 guidance=$7 seed=$8
shift 8
printf 'sampler\tsteps\taccuracy_%%\tFID\tseconds\n'
for run in "$@"; do
  sampler=${run%:*} steps=${run#*:}
  dir=$work/$sampler-$steps
  rm -rf "$dir"
  start=$(date +%s.%N)
  for c in 0 1 2 3 4 5 6 7 8 9; do
    mkdir -p "$dir/$c"
    "$gdiffuse" sample -q "$model" --prompt $c -n "$n" --guidance "$guidance" --seed "$seed" \
      --sampler "$sampler" --steps "$steps" -o "$dir/$c/s-%04d.png"
  done
  end=$(date +%s.%N)
  right=0
  for c in 0 1 2 3 4 5 6 7 8 9; do
    k=$("$gscore" classify -q "$classifier" "$dir/$c" --expect $c | tail -1 | sed -E 's/.*: ([0-9]+) of .*/\1/')
    right=$((right + k))
  done
  fid=$("$gscore" fid -q "$classifier" --ref fashion-mnist:test "$dir"/[0-9] | sed -nE 's/^FID ([0-9.]+).*/\1/p')
  awk -v s="$sampler" -v k="$steps" -v r="$right" -v n="$((10 * n))" -v f="$fid" -v a="$start" -v b="$end" \
    'BEGIN {printf "%s\t%d\t%.1f\t%.1f\t%.1f\n", s, k, 100 * r / n, f, b - a}'
done
