#!/usr/bin/env bash
# The decode kernels on the H200, one command (after prepare.sh here, .device/decodek carried):
# builds the harness and the benchmark's library there unless build.sh built them here (nvcc,
# JOBS=16), checks every decode kernel and variant against float64 (check_kernels.py: ragged
# shapes, T = 1, 3, 5, 11, 16), then times them (bench.py: T = 1, 4, 16, beside cuBLAS bf16 and
# the device copy rate of the same run) and prints % of the bytes floor, the short table last
# (summary.py). NCU_KERNELS=regex profiles those kernels with Nsight Compute after the timings.
#
#   OUT=/tmp/decodek test/bench/cuda/decode/run.sh
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
dev="$root/${DECODE_DIR:-.device/decodek}"
out="${OUT:-$dev-out}"
jobs="${JOBS:-16}"
mkdir -p "$out"
command -v nvcc > /dev/null || { echo "run.sh: nvcc is not on PATH" >&2; exit 1; }
[ -d "$dev/harness" ] || { echo "run.sh: $dev/harness missing: run test/bench/cuda/decode/prepare.sh here and carry .device/decodek" >&2; exit 1; }
started=$(date +%s)
status=0
h200="$root/test/backends/cuda/h200"
hb="$dev/harness-build"
bb="$dev/bench-build"
# Built here by build.sh (carried), or now with nvcc's 16 jobs.
if [ ! -x "$hb/qalc-cuda-harness" ] || [ ! -f "$bb/libqalc-bench.so" ]; then
  bash "$here/build.sh" "$jobs" > "$out/build.txt" 2>&1 || { tail -30 "$out/build.txt"; exit 1; }
  tail -1 "$out/build.txt"
fi
python3 "$h200/check_kernels.py" --harness "$hb/qalc-cuda-harness" --kernels "$dev/harness/kernels.json" --out "$out/harness" > "$out/harness.log" 2>&1 || status=1
rm -rf "$out/harness/work"
tail -5 "$out/harness.log"
echo "harness done at $(( $(date +%s) - started )) s"
cuobjdump --dump-sass "$bb/libqalc-bench.so" > "$out/sass.txt" 2>&1 || true
cp "$bb/ptxas.txt" "$out/ptxas.txt"
BENCH_COMMIT="$(cat "$dev/commit.txt")" python3 "$root/test/bench/cuda/bench.py" --build "$bb" --out "$out/bench" --no-compile \
  --only "${ONLY:-^decode_}" --decode-tokens "${DECODE_TOKENS:-1,4,16}" > "$out/bench.log" 2>&1 || status=1
grep -E "FAIL|Error|error" "$out/bench.log" | head -20
if [ -n "${NCU_KERNELS:-}" ] && command -v ncu > /dev/null; then
  timeout "${NCU_TIMEOUT:-90}" ncu --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    -k "regex:${NCU_KERNELS}" --launch-count "${NCU_COUNT:-4}" python3 "$root/test/bench/cuda/bench.py" --build "$bb" \
    --out "$out/ncu-run" --profile --only "${NCU_ONLY:-.}" --decode-tokens "${DECODE_TOKENS:-1,4,16}" > "$out/ncu.txt" 2>&1 || true
fi
python3 "$here/summary.py" "$out/harness/results.json" "$out/bench/bench.json" "$out/sass.txt" | tee "$out/summary.md"
echo "run.sh took $(( $(date +%s) - started )) s; status $status"
exit "$status"
