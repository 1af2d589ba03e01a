#!/usr/bin/env bash
# The benchmark on the GPU machine, one command: builds the kernels there if build/ is absent
# (emitted .cu files carried in build/kernels; JOBS=16), runs bench.py (correctness vs float64
# first, then the timings and the ceilings), and profiles the slowest kernels with Nsight
# Compute. Writes $OUT/bench.json, bench.md, ncu.txt, sass.txt.
#
#   OUT=/tmp/bench test/bench/cuda/run.sh [bench.py options]
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
if [ ! -f "$here/build/libqalc-bench.so" ]; then
  SKIP_EMIT="$here/build/kernels" JOBS="${JOBS:-16}" "$here/build.sh" > "$out/build.txt" 2>&1 || { tail -40 "$out/build.txt"; exit 1; }
fi
cp "$here/build/ptxas.txt" "$out/ptxas.txt"
cuobjdump --dump-sass "$here/build/libqalc-bench.so" > "$out/sass.txt" 2>&1 || true
status=0
python3 "$here/bench.py" --build "$here/build" --out "$out" "$@" 2>&1 | tee "$out/bench.log" | tail -n +1 > /dev/null || status=1
if [ -n "${NCU_KERNELS:-}" ] && command -v ncu > /dev/null; then
  timeout "${NCU_TIMEOUT:-120}" ncu --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
    --section LaunchStats --section WarpStateStats -k "regex:${NCU_KERNELS}" --launch-count "${NCU_COUNT:-6}" \
    python3 "$here/bench.py" --build "$here/build" --out "$out/ncu-run" --profile --quick --only "${NCU_ONLY:-.}" > "$out/ncu.txt" 2>&1 || true
fi
tail -c 6000 "$out/bench.md" 2>/dev/null || tail -50 "$out/bench.log"
exit $status
