#!/usr/bin/env bash
# Emits, here, the CUDA sources test/bench/cuda/decode/run.sh builds and runs on the GPU machine
# (nvcc there, 16 cores) into .device/decodek/ (git-ignored; carry it: `carry: [".device/decodek"]`):
#   harness/   the H200 harness's decode kernels (emit-harness-kernels.ts --roles decode: ragged
#              K and N, 2- and 4-bit, f16 and bf16) with every decode variant beside the shipped body
#   bench/     the benchmark's decode kernels (emit-bench-kernels.ts --roles decode: the 7B shapes,
#              W4 g128 r16 and 2/3/8-bit at 4096 x 11008) with the same variants
#   commit.txt the commit (marked when src/, templates/ or test/ have changes)
#
#   test/bench/cuda/decode/prepare.sh [v7,v8a,v8d,v8e] (any of v7, v8a–v8e, v9; the shipped body, v8c, is always there)
#   DECODE_DIR=.device/lowbit test/bench/cuda/decode/prepare.sh v9   (another folder; build.sh and run.sh read the same variable)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
variants="${1:-v7,v8a,v8d,v8e}"
dev="$root/${DECODE_DIR:-.device/decodek}"
rm -rf "$dev"
mkdir -p "$dev/harness" "$dev/bench"
cd "$root"
npx tsx test/backends/cuda/h200/emit-harness-kernels.ts "$dev/harness" --roles decode --decode-variants "$variants"
npx tsx test/bench/cuda/emit-bench-kernels.ts "$dev/bench" --roles decode --shapes 4096x4096,4096x11008,11008x4096 --decode-variants "$variants"
echo "$variants" > "$dev/variants.txt"
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src templates test || echo ' + uncommitted changes')" > "$dev/commit.txt"
echo "prepared $dev: $(ls "$dev/harness"/*.cu | wc -l) harness kernels, $(ls "$dev/bench"/*.cu | wc -l) bench kernels"
