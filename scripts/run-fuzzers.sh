#!/usr/bin/env bash
# Runs every libFuzzer target in a GEN_FUZZ build for a bounded time each.
# Usage: scripts/run-fuzzers.sh BUILD_DIR [SECONDS]
# New inputs go to a scratch folder; the seed corpus in tests/fuzz/NAME/ is only read. A crash
# leaves its input as crash-* in the current folder and fails the run.
set -euo pipefail
build=$1
seconds=${2:-30}
here=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for fuzzer in "$build"/tests/fuzz/fuzz_*; do
  name=$(basename "$fuzzer")
  name=${name#fuzz_}
  mkdir -p "$scratch/$name"
  echo "fuzz $name: ${seconds}s" >&2
  "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    "$scratch/$name" "$here/tests/fuzz/$name" 2>"$scratch/$name.log" || {
    tail -40 "$scratch/$name.log" >&2
    echo "fuzz $name: FAILED" >&2
    exit 1
  }
  grep -E "stat::number_of_executed_runs|cov:" "$scratch/$name.log" | tail -2 | sed "s/^/fuzz $name: /" >&2
done
echo "fuzzers passed" >&2
