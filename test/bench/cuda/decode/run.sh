#!/usr/bin/env bash
# The decode kernels on the H200, one command (after prepare.sh here, .device/decodek carried):
# builds the harness and the benchmark's library there (nvcc, JOBS=16), checks every decode
# kernel and variant against float64 (check_kernels.py: ragged shapes, T = 1, 3, 5, 11, 16), then
# times them (bench.py: T = 1, 4, 16, beside cuBLAS bf16 and the device copy rate of the same
# run) and prints % of the bytes floor, the short table last (summary.py).
#
#   OUT=/tmp/decodek test/bench/cuda/decode/run.sh
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
dev="$root/.device/decodek"
out="${OUT:-$root/.device/decodek-out}"
jobs="${JOBS:-16}"
mkdir -p "$out"
command -v nvcc > /dev/null || { echo "run.sh: nvcc is not on PATH" >&2; exit 1; }
[ -d "$dev/harness" ] || { echo "run.sh: $dev/harness missing: run test/bench/cuda/decode/prepare.sh here and carry .device/decodek" >&2; exit 1; }
started=$(date +%s)
status=0
gencode="-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90"
hb="$dev/harness-build"
rm -rf "$hb" && mkdir -p "$hb/objects"
echo "$gencode" > "$dev/harness/gencode.txt"
export gencode hb
find "$dev/harness" -name '*.cu' -print0 | sort -z | xargs -0 -P "$jobs" -I{} sh -c \
  'nvcc -std=c++17 -O3 -Werror all-warnings $gencode -c "$1" -o "$hb/objects/$(basename "$1" .cu).o"' _ {} || { echo "harness kernels failed to build"; exit 1; }
h200="$root/test/backends/cuda/h200"
# shellcheck disable=SC2086
nvcc -std=c++17 -O2 -Werror all-warnings $gencode -I"$h200" -cudart static "$h200/harness.cpp" "$dev/harness/registry.gen.cpp" "$hb"/objects/*.o -o "$hb/qalc-cuda-harness" || exit 1
echo "harness built in $(( $(date +%s) - started )) s"
python3 "$h200/check_kernels.py" --harness "$hb/qalc-cuda-harness" --kernels "$dev/harness/kernels.json" --out "$out/harness" > "$out/harness.log" 2>&1 || status=1
rm -rf "$out/harness/work"
tail -5 "$out/harness.log"
echo "harness done at $(( $(date +%s) - started )) s"
# The benchmark: build.sh compiles the carried sources into test/bench/cuda/build.
SKIP_EMIT="$dev/bench" JOBS="$jobs" "$root/test/bench/cuda/build.sh" > "$out/bench-build.txt" 2>&1 || { tail -30 "$out/bench-build.txt"; exit 1; }
tail -1 "$out/bench-build.txt"
cuobjdump --dump-sass "$root/test/bench/cuda/build/libqalc-bench.so" > "$out/sass.txt" 2>&1 || true
cp "$root/test/bench/cuda/build/ptxas.txt" "$out/ptxas.txt"
BENCH_COMMIT="$(cat "$dev/commit.txt")" python3 "$root/test/bench/cuda/bench.py" --build "$root/test/bench/cuda/build" --out "$out/bench" --no-compile \
  --only "${ONLY:-^decode_}" --decode-tokens "${DECODE_TOKENS:-1,4,16}" > "$out/bench.log" 2>&1 || status=1
grep -E "FAIL|Error|error" "$out/bench.log" | head -20
if [ -n "${NCU_KERNELS:-}" ] && command -v ncu > /dev/null; then
  timeout "${NCU_TIMEOUT:-90}" ncu --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    -k "regex:${NCU_KERNELS}" --launch-count "${NCU_COUNT:-4}" python3 "$root/test/bench/cuda/bench.py" --build "$root/test/bench/cuda/build" \
    --out "$out/ncu-run" --profile --only "${NCU_ONLY:-.}" --decode-tokens "${DECODE_TOKENS:-1,4,16}" > "$out/ncu.txt" 2>&1 || true
fi
python3 "$here/summary.py" "$out/harness/results.json" "$out/bench/bench.json" "$out/sass.txt" | tee "$out/summary.md"
echo "run.sh took $(( $(date +%s) - started )) s; status $status"
exit "$status"
