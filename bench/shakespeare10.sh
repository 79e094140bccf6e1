#!/usr/bin/env bash
# examples/shakespeare-10min against PyTorch: its config, trained for the same wall-clock budget
# by gtrain (the example itself) and by PyTorch (bench/shakespeare_torch.py, Debian's
# python3-torch, at its best setting here: torch 1 thread, OpenBLAS 2), one after the other on the same machine: the validation loss each
# reaches (the mean over 12800 random windows of the held-out text, after the time), and their
# ratio. About 2 x MINUTES + 4 minutes.
# Usage: shakespeare10.sh BUILD CORPUS [MINUTES]
set -euo pipefail
build=$1
corpus=$2
minutes=${3:-10}
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
aten=$(aten_isa)  # PyTorch's kernels: its best for this CPU, or AVX2 with BENCH_ISA=avx2
example=$here/../examples/shakespeare-10min
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --no-print-directory: under make -C bench, MAKEFLAGS has -w, and the "Entering directory" lines
# would land in the config and in the example's last line.
config=$(make -s --no-print-directory -C "$example" config MINUTES="$minutes")
setting() { echo "$config" | tr ' ' '\n' | awk -v k="--$1" 'found {print; exit} $0 == k {found = 1}'; }
if [ "$(setting dropout)" != "" ] && [ "$(setting dropout)" != 0 ]; then
  echo "shakespeare10.sh: the PyTorch side has no dropout; the example's config uses --dropout $(setting dropout)" >&2
  exit 1
fi
machine
echo "config: $config"
make -s --no-print-directory -C "$example" BUILD="$build" SHAKESPEARE="$corpus" OUT="$work/gen" MINUTES="$minutes" >"$work/gen.log" 2>&1
gen=$(grep "^validation loss" "$work/gen.log" | tail -1)
echo "gtrain:  $gen"
vocab=$(($("$build/tools/gtok" vocab -m "$work/gen/char.model" | wc -l) - 1))
# The steps gtrain planned (what fits in the minutes on this machine: a cap for PyTorch, which
# plans its own the same way) and the optimizer's settings, as gtrain ran them: its checkpoint's
# metadata, defaults included.
saved() {
  /usr/bin/python3 -c 'import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]
train = json.loads(json.loads(f.read(n))["__metadata__"]["train"])
print(train["steps"], *("%g" % train["settings"].get(k, 0) for k in sys.argv[2:]))' "$work/gen/lm.st" "$@"
}
read -r steps weight_decay grad_clip beta1 beta2 muon muon_momentum < <(saved weight_decay grad_clip beta1 beta2 muon muon_momentum)
echo "gtrain planned $steps steps (PyTorch plans its own, as gtrain: the warmup timed); AdamW betas $beta1 $beta2, weight decay $weight_decay, clip $grad_clip"
muon_args=()
if [ "$muon" = 1 ]; then
  echo "the blocks' matrices by Muon, momentum $muon_momentum"
  muon_args=("$muon_momentum")
fi
EVAL_EVERY=$(setting eval-every) ATEN_CPU_CAPABILITY=$aten TORCH_THREADS=1 OPENBLAS_NUM_THREADS=2 /usr/bin/python3 "$here/shakespeare_torch.py" "$work/gen/ids" "$vocab" \
  "$minutes" "$steps" "$(setting layers)" "$(setting heads)" "$(setting embd)" "$(setting context)" \
  "$(setting batch)" "$(setting lr)" "$(setting min-lr)" "$(setting warmup)" \
  "$weight_decay" "$grad_clip" "$beta1" "$beta2" "${muon_args[@]}" >"$work/torch.log"
read -r _ tsteps tminutes tloss tplanned < <(tail -1 "$work/torch.log")
echo "pytorch: validation loss $tloss at step $tsteps of $tplanned planned, $tminutes minutes ($(grep ' windows: val' "$work/torch.log" | cut -d' ' -f1) random windows; its own in the time: $(grep '^step' "$work/torch.log" | tail -1 | cut -d' ' -f4))"
gloss=$(echo "$gen" | awk '{print $3}')
awk -v g="$gloss" -v t="$tloss" -v m="$minutes" 'BEGIN {printf "validation loss in %s minutes: gtrain %.4f, pytorch %.4f (pytorch / gtrain %.3f)\n", m, g, t, t / g}'
