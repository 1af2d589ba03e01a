#!/usr/bin/env bash
# The stories260K fine-tune on the H200 with --backend cpu and --backend cuda, compared step by
# step (src/runtime/cuda/H200-TRAIN.md records a run). Runs from the repository root with a
# .device/ folder prepared as H200-TRAIN.md says: node.xz, qalc/ (bundle, templates, addons),
# kernels/ (the .cu and sm_90a fatbins of `qalc compile`), data/ and stories260k.qal.
set -euo pipefail
out=${OUT:-/tmp/qalc-h200}
mkdir -p "$out"
xz -dc .device/node.xz > /tmp/node && chmod +x /tmp/node
nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader || true
for backend in cpu cuda; do
  rm -rf "/tmp/run-$backend"
  /tmp/node .device/qalc/qalc.mjs train .device/stories260k.qal --backend "$backend" --kernels .device/kernels --out "/tmp/run-$backend" 2>&1 | tr '\r' '\n' | grep -v '^\[#' || true
  cp "/tmp/run-$backend/train.jsonl" "$out/train-$backend.jsonl"
done
for backend in cpu cuda; do
  echo "eval --backend $backend (the cuda run's adapters):"
  /tmp/node .device/qalc/qalc.mjs eval .device/stories260k.qal --backend "$backend" --kernels .device/kernels --out /tmp/run-cuda 2>&1
done
/tmp/node test/runtime/cuda/h200/compare-runs.mjs /tmp/run-cpu /tmp/run-cuda | tee "$out/compare.md"
