#!/usr/bin/env bash
# Builds, here, everything train-cpu-vs-cuda.sh needs on the GPU machine (which has no Node.js and
# no internet), into .device/train/ (git-ignored; name it in the device call's `carry`):
#   node.xz, qalc/          node and the qalc bundle (bundle-qalc.sh)
#   data/                   stories260K.bin, tok512.bin, the first 300,000 characters of tinyshakespeare
#   stories260k.qal         examples/stories260k.qal with its paths pointed into data/, STEPS steps, sm_90a only
#   compiled/               `qalc compile` of that spec (manifest.json, cuda/: every .cu and its fatbins)
#
#   test/runtime/cuda/h200/prepare.sh            # ~3 min on 2 cores (nvcc)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"
shared="$(cd "$root/../shared" && pwd)"
dev="$root/.device/train"
steps="${STEPS:-20}"
rm -rf "$dev"
mkdir -p "$dev/data"
bash "$root/test/runtime/cuda/h200/bundle-qalc.sh" "$dev"
cd "$root"
cp "$shared/models/stories260K/stories260K.bin" "$shared/models/stories260K/tok512.bin" "$dev/data/"
head -c 300000 "$shared/data/tinyshakespeare.txt" > "$dev/data/tinyshakespeare.txt"
sed -e 's#"../../shared/models/stories260K/#"data/#' -e 's#"../../shared/data/#"data/#' \
  -e "s#steps = 200#steps = $steps#" -e 's#eval_every = 50#eval_every = 10#' -e "s#checkpoint_every = 50#checkpoint_every = $steps#" \
  -e 's#arch = \[sm_80, sm_90a\]#arch = [sm_90a]#' examples/stories260k.qal > "$dev/stories260k.qal"
node src/cli/qalc.mjs compile "$dev/stories260k.qal" --out "$dev/compiled"
rm -rf "$dev/compiled/wgsl"
du -sh "$dev"
