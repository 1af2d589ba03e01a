#!/usr/bin/env bash
# Checks and times qalc's CUDA attention kernels on a GPU machine. Needs the folder that
# emit-attention-kernels.ts wrote (attention-kernels.json, the .cu and sm_90a fatbins) and
# python3 with PyTorch. Writes OUT/attention.md (the tables), OUT/log.txt, OUT/sass-summary.txt.
#
#   npx tsx test/backends/cuda/h200/ops/emit-attention-kernels.ts DIR   # here
#   OUT=/tmp/out test/backends/cuda/h200/ops/run-attention.sh DIR       # on the GPU machine
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kernels="${1:?usage: run-attention.sh KERNEL_DIR}"
out="${OUT:-$here/out}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader > "$out/device.txt" 2>/dev/null || true
# Which matrix instructions each kernel's SASS holds (HMMA = mma.sync).
for f in "$kernels"/*.sm_90a.fatbin; do
  cuobjdump --dump-sass "$f" 2>/dev/null | awk -v file="$(basename "$f")" '
    /Function : / { name = $3; next } /HMMA/ { hmma[name]++ } /LDSM/ { ldsm[name]++ } { if (name) seen[name] = 1 }
    END { for (n in seen) printf "%s %s: %d HMMA, %d LDSM\n", file, n, hmma[n], ldsm[n] }'
done | sort > "$out/sass-summary.txt"
status=0
PYTHONUNBUFFERED=1 python3 "$here/check_attention.py" --kernels "$kernels" --out "$out" 2>&1 | tee "$out/log.txt" || status=1
cat "$out/sass-summary.txt"
# Out-of-bounds and misaligned accesses on ragged shapes (where the runtime lets compute-sanitizer work).
if command -v compute-sanitizer > /dev/null; then
  QUICK=1 timeout 150 compute-sanitizer --tool memcheck --print-limit 10 python3 "$here/check_attention.py" --kernels "$kernels" --out "$out/sanitizer" > "$out/memcheck.txt" 2>&1
  echo "memcheck exit $?"; tail -n 5 "$out/memcheck.txt"
fi
exit "$status"
