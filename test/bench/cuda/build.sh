#!/usr/bin/env bash
# Builds the benchmark's kernels (emit-bench-kernels.ts) into one shared library,
#   test/bench/cuda/build/libqalc-bench.so
# beside build/kernels/kernels.json (bindings and launchers, which bench.py reads) and
# build/ptxas.txt (registers, shared memory, spills of every kernel). Runs here (nvcc, no GPU)
# or on the GPU machine (faster: JOBS=16). Then run.sh on the GPU machine.
#
#   test/bench/cuda/build.sh [--quick]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
build="$here/build"
gencode="-gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90"
jobs="${JOBS:-$(nproc)}"
started=$(date +%s)
rm -rf "$build"
mkdir -p "$build/kernels" "$build/objects"
if [ -z "${SKIP_EMIT:-}" ]; then
  (cd "$root" && npx tsx test/bench/cuda/emit-bench-kernels.ts "$build/kernels" "$@")
else
  cp "$SKIP_EMIT"/*.cu "$SKIP_EMIT"/kernels.json "$build/kernels/"
fi
export gencode build
# shellcheck disable=SC2016,SC2086
find "$build/kernels" -name '*.cu' -print0 | sort -z | xargs -0 -P "$jobs" -I{} sh -c \
  'stem=$(basename "$1" .cu); nvcc -std=c++17 -O3 -Werror all-warnings -Xptxas -v -Xcompiler -fPIC $gencode -c "$1" -o "$build/objects/$stem.o" 2> "$build/objects/$stem.ptxas.txt" || { cat "$build/objects/$stem.ptxas.txt"; exit 1; }' _ {}
cat "$build"/objects/*.ptxas.txt > "$build/ptxas.txt"
# shellcheck disable=SC2086
nvcc -shared $gencode -cudart shared "$build"/objects/*.o -o "$build/libqalc-bench.so"
echo "built $build/libqalc-bench.so ($(ls "$build"/kernels/*.cu | wc -l) kernels) in $(( $(date +%s) - started )) s"
