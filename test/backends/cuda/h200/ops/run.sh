#!/usr/bin/env bash
# Checks and times qalc's CUDA model-op kernels on a GPU machine (check_ops.py), then runs the
# small specs' checks again under compute-sanitizer's memcheck (out-of-bounds and misaligned
# accesses on ragged shapes). Needs the folder emit-op-kernels.ts wrote and python3 with
# PyTorch and numpy. Writes OUT/ops.md (the tables), OUT/results.json, OUT/log.txt,
# OUT/memcheck.txt, OUT/device.txt; exit 1 when a check fails. Attention has its own
# run-attention.sh (helper A's check_attention.py).
#
#   npx tsx test/backends/cuda/h200/ops/emit-op-kernels.ts DIR examples/stories260k.qal \
#       test/backends/cuda/h200/ops/ragged.qal test/backends/cuda/h200/ops/vector.qal examples/llama-7b-int4-g32.qal  # here
#   npx tsx test/backends/cuda/h200/ops/emit-lm-head-variants.ts VARIANTS examples/llama-7b-int4-g32.qal  # optional
#   OUT=/tmp/out test/backends/cuda/h200/ops/run.sh DIR [VARIANTS]                 # on the GPU machine
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kernels="${1:?usage: run.sh KERNEL_DIR [LM_HEAD_VARIANTS_DIR]}"
variants=()
[ -n "${2:-}" ] && variants=(--variants "$2")
out="${OUT:-$here/out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv,noheader > "$out/device.txt" 2>/dev/null || true
PYTHONUNBUFFERED=1 python3 "$here/check_ops.py" --kernels "$kernels" --out "$out" "${variants[@]}" > "$out/log.txt" 2>&1
status=$?
grep -v '^ok ' "$out/log.txt" | tail -n 40
if command -v compute-sanitizer > /dev/null; then
  small="$(mktemp -d)"
  for spec in "$kernels"/*; do
    case "$(basename "$spec")" in llama*) ;; *) ln -s "$(cd "$spec" && pwd)" "$small/$(basename "$spec")" ;; esac
  done
  QUICK=1 timeout 70 compute-sanitizer --tool memcheck --print-limit 10 python3 "$here/check_ops.py" --kernels "$small" --out "$out/sanitizer" > "$out/memcheck.txt" 2>&1
  echo "memcheck exit $? ($(grep -c 'Invalid' "$out/memcheck.txt") invalid accesses)"
  tail -n 4 "$out/memcheck.txt"
fi
exit "$status"
