#!/usr/bin/env bash
# Install every Debian 12 package that gen needs to build, test, benchmark and run its demos.
# Idempotent: when everything is present it prints nothing and exits 0.
# Usage: scripts/install-deps.sh        (as root, or with sudo available)
set -euo pipefail

packages=(
  # toolchain (dpkg-dev and file: make package, whose CPack reads the tools' library needs)
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev libomp-14-dev dpkg-dev file
  # libraries
  libcli11-dev libsentencepiece-dev libfmt-dev doctest-dev nlohmann-json3-dev
  zlib1g-dev libpng-dev libgif-dev libopenblas-dev libcairo2-dev fonts-dejavu-core
  # Open MPI: data-parallel training over mpirun (libopenmpi-dev to build, openmpi-bin to run)
  libopenmpi-dev openmpi-bin
  # tools and data used by tests, demos and benchmarks
  sentencepiece fortunes dataset-fashion-mnist python3 python3-numpy python3-torch
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >/dev/null
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
