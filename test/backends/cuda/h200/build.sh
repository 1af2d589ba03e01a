#!/usr/bin/env bash
# Builds the H200 correctness harness HERE (no GPU needed): emits the harness kernels
# (emit-harness-kernels.ts), compiles each .cu with nvcc (warnings are errors) into an object,
# and links them with harness.cpp and the generated registry, cudart static, into
#   test/backends/cuda/h200/build/qalc-cuda-harness
# next to build/kernels/kernels.json (and gencode.txt), which check_kernels.py reads. Then
# run.sh runs it.
#
#   test/backends/cuda/h200/build.sh            # sm_90a SASS + compute_90 PTX (the H200)
#   HARNESS_GENCODE="-gencode=arch=compute_80,code=sm_80" build.sh   # another GPU
#   test/backends/cuda/h200/build.sh --roles forward,backward_data      # only those kernels
#   HARNESS_ROLES=decode build.sh               # only the kernels of those roles (comma-separated)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
build="$here/build"
kernels="$build/kernels"
gencode="${HARNESS_GENCODE:--gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90}"
jobs="${JOBS:-$(nproc)}"
started=$(date +%s)

rm -rf "$kernels" "$build/objects"
mkdir -p "$kernels" "$build/objects"
(cd "$root" && npx tsx test/backends/cuda/h200/emit-harness-kernels.ts "$kernels" ${HARNESS_ROLES:+--roles "$HARNESS_ROLES"} "$@")
# check_kernels.py reads the targets: wgmma bodies run only on an sm_90a build.
echo "$gencode" > "$kernels/gencode.txt"

export gencode build
# shellcheck disable=SC2016,SC2086
find "$kernels" -name '*.cu' -print0 | sort -z | xargs -0 -P "$jobs" -I{} sh -c \
  'nvcc -std=c++17 -O3 -Werror all-warnings $gencode -c "$1" -o "$build/objects/$(basename "$1" .cu).o"' _ {}

# shellcheck disable=SC2086
nvcc -std=c++17 -O2 -Werror all-warnings $gencode -I"$here" -cudart static \
  "$here/harness.cpp" "$kernels/registry.gen.cpp" "$build"/objects/*.o -o "$build/qalc-cuda-harness"
echo "built $build/qalc-cuda-harness ($(ls "$kernels"/*.cu | wc -l) kernels) in $(( $(date +%s) - started )) s"
