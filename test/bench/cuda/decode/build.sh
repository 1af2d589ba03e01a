#!/usr/bin/env bash
# Builds what prepare.sh emitted into .device/decodek: the harness (harness-build/qalc-cuda-harness)
# and the benchmark's library (bench-build/libqalc-bench.so, ptxas.txt). Runs here (no GPU, slow
# on 2 cores) or on the GPU machine (run.sh calls it when the carried folder has no build).
#
#   test/bench/cuda/decode/build.sh [JOBS]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
dev="$root/${DECODE_DIR:-.device/decodek}"
jobs="${1:-$(nproc)}"
started=$(date +%s)
gencode="-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90"
h200="$root/test/backends/cuda/h200"
rm -rf "$dev/harness-build" "$dev/bench-build"
mkdir -p "$dev/harness-build/objects" "$dev/bench-build/objects"
echo "$gencode" > "$dev/harness/gencode.txt"
export gencode dev
# Both sets in one queue, each object with its ptxas report (warnings are errors).
{ find "$dev/harness" -name '*.cu' -printf 'harness %p\n'; find "$dev/bench" -name '*.cu' -printf 'bench %p\n'; } | sort -k2 | xargs -P "$jobs" -L 1 sh -c \
  'set -e; o="$dev/$0-build/objects/$(basename "$1" .cu)"; nvcc -std=c++17 -O3 -Werror all-warnings -Xptxas -v -Xcompiler -fPIC $gencode -c "$1" -o "$o.o" 2> "$o.ptxas.txt" || { cat "$o.ptxas.txt"; exit 255; }'
# shellcheck disable=SC2086
nvcc -std=c++17 -O2 -Werror all-warnings $gencode -I"$h200" -cudart static "$h200/harness.cpp" "$dev/harness/registry.gen.cpp" "$dev"/harness-build/objects/*.o -o "$dev/harness-build/qalc-cuda-harness"
cat "$dev"/bench-build/objects/*.ptxas.txt > "$dev/bench-build/ptxas.txt"
cat "$dev"/harness-build/objects/*.ptxas.txt > "$dev/harness-build/ptxas.txt"
# shellcheck disable=SC2086
nvcc -shared $gencode -cudart shared "$dev"/bench-build/objects/*.o -o "$dev/bench-build/libqalc-bench.so"
mkdir -p "$dev/bench-build/kernels" && cp "$dev/bench/kernels.json" "$dev/bench-build/kernels/"
rm -rf "$dev/harness-build/objects" "$dev/bench-build/objects"
spills=$(grep -h "spill" "$dev/bench-build/ptxas.txt" "$dev/harness-build/ptxas.txt" | grep -vc " 0 bytes spill stores, 0 bytes spill loads" || true)
echo "built $dev/harness-build and $dev/bench-build in $(( $(date +%s) - started )) s; functions with spills: $spills"
