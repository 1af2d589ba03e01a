#!/usr/bin/env bash
# Runs the CUDA correctness check on a GPU machine, given the harness built by build.sh:
# needs test/backends/cuda/h200/build/ (qalc-cuda-harness and kernels/kernels.json), python3
# with PyTorch and numpy. Writes $OUT/results.md (the table), results.json, harness.log and
# the .bin files under $OUT/work. Exit status 0 when every output is within tolerance.
#
#   test/backends/cuda/h200/build.sh                        # here: ~2.5 min on 2 cores
#   OUT=/tmp/qalc-cuda-check test/backends/cuda/h200/run.sh # on the GPU machine: ~10 s
# build/ is git-ignored: carry build/qalc-cuda-harness and build/kernels/kernels.json (about
# 4 MB) with the checkout; nothing else under build/ is needed there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/device.txt" 2>/dev/null || true
status=0
python3 "$here/check_kernels.py" --harness "$here/build/qalc-cuda-harness" --kernels "$here/build/kernels/kernels.json" --out "$out" || status=$?
rm -rf "$out/work"  # inputs and outputs are regenerated deterministically from the seed
exit "$status"
