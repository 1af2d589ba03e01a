#!/usr/bin/env bash
# The stories260K fine-tune on the H200 with --backend cpu and --backend cuda, compared step by
# step (src/runtime/cuda/H200-TRAIN.md records the runs). Runs from the repository root with the
# .device/train/ folder that test/runtime/cuda/h200/prepare.sh builds here (carry it):
#   bash test/runtime/cuda/h200/train-cpu-vs-cuda.sh
# Writes $OUT/compare.md, $OUT/train-{cpu,cuda}.jsonl and $OUT/log.txt.
set -euo pipefail
out=${OUT:-/tmp/qalc-h200}
dev=.device/train
mkdir -p "$out"
xz -dc "$dev/node.xz" > /tmp/node && chmod +x /tmp/node
qalc() { /tmp/node "$dev/qalc/qalc.mjs" "$@"; }
{
  nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader || true
  for backend in cpu cuda; do
    rm -rf "/tmp/run-$backend"
    echo "== qalc train --backend $backend"
    qalc train "$dev/stories260k.qal" --backend "$backend" --kernels "$dev/compiled/cuda" --out "/tmp/run-$backend" 2>&1 | tr '\r' '\n' | grep -v '^\[#' || true
    cp "/tmp/run-$backend/train.jsonl" "$out/train-$backend.jsonl" || true
  done
  for backend in cpu cuda; do
    echo "== qalc eval --backend $backend (the cuda run's adapters)"
    qalc eval "$dev/stories260k.qal" --backend "$backend" --kernels "$dev/compiled/cuda" --out /tmp/run-cuda 2>&1 || true
  done
} 2>&1 | tee "$out/log.txt"
/tmp/node test/runtime/cuda/h200/compare-runs.mjs /tmp/run-cpu /tmp/run-cuda | tee "$out/compare.md"
