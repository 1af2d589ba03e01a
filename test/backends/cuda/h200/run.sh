#!/usr/bin/env bash
# Runs the CUDA correctness check on a GPU machine, given the harness built by build.sh:
# needs test/backends/cuda/h200/build/ (qalc-cuda-harness, kernels/kernels.json and
# kernels/gencode.txt), python3 with PyTorch and numpy. Writes $OUT/results.md (the table, then
# the SASS summary of the tensor-core kernels and the timings), results.json, harness.log,
# sass-summary.txt and timing.txt. Exit status 0 when every output is within tolerance.
#
#   test/backends/cuda/h200/build.sh                        # here: ~5 min on 2 cores
#   OUT=/tmp/qalc-cuda-check test/backends/cuda/h200/run.sh # on the GPU machine: ~30 s
# build/ is git-ignored: carry build/qalc-cuda-harness, build/kernels/kernels.json and
# build/kernels/gencode.txt with the checkout; nothing else under build/ is needed there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-$here/out}"
harness="$here/build/qalc-cuda-harness"
kernels="$here/build/kernels/kernels.json"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/device.txt" 2>/dev/null || true
status=0
python3 "$here/check_kernels.py" --harness "$harness" --kernels "$kernels" --out "$out" || status=$?
rm -rf "$out/work"  # inputs and outputs are regenerated deterministically from the seed

# Which matrix instructions each tensor-core kernel's SASS holds (HGMMA = wgmma, HMMA = mma.sync).
if command -v cuobjdump > /dev/null; then
  cuobjdump --dump-sass "$harness" | awk '
    /Function : / { name = $3; next }
    name ~ /TensorCore/ && /HGMMA/ { hgmma[name]++ }
    name ~ /TensorCore/ && /HMMA/ { hmma[name]++ }
    name ~ /TensorCore/ { seen[name] = 1 }
    END { for (n in seen) printf "%s: %d HGMMA, %d HMMA\n", n, hgmma[n], hmma[n] }' | sort > "$out/sass-summary.txt" || true
  { echo; echo "## SASS of the tensor-core kernels (cuobjdump: HGMMA = wgmma, HMMA = mma.sync)"; echo
    sed 's/^/    /' "$out/sass-summary.txt"; } >> "$out/results.md"
fi

# Timings: kernels.json marks the large layers; REPEATS launches each, median and minimum.
python3 - "$kernels" > "$out/timed.txt" <<'PY'
import json, sys
for k in json.load(open(sys.argv[1]))["kernels"]:
    if k.get("timingTokens"):
        L = k["layer"]
        print(k["name"], k["launchers"][0]["entryPoint"], k["timingTokens"], 2 * k["timingTokens"] * L["inFeatures"] * L["outFeatures"])
PY
if [ -s "$out/timed.txt" ]; then
  : > "$out/timing.txt"
  while read -r name entry tokens flops; do
    line=$("$harness" --time "$name" "$entry" "$tokens" "${REPEATS:-50}") || status=1
    median=$(echo "$line" | awk '{ for (i = 1; i < NF; ++i) if ($i == "median") print $(i + 1) }')
    echo "$line; $(awk -v f="$flops" -v ms="$median" 'BEGIN { if (ms > 0) printf "%.1f TFLOP/s (median)", f / ms / 1e9 }')" >> "$out/timing.txt"
  done < "$out/timed.txt"
  { echo; echo "## Timings (events around each launch, inputs filled with the byte 0x3C)"; echo
    sed 's/^/    /' "$out/timing.txt"; } >> "$out/results.md"
  cat "$out/timing.txt"
fi
exit "$status"
