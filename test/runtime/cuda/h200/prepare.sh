#!/usr/bin/env bash
# Builds, here, everything train-cpu-vs-cuda.sh needs on the GPU machine (which has no Node.js and
# no internet), into .device/train/ (git-ignored; name it in the device call's `carry`):
#   node.xz                 this machine's node binary
#   qalc/qalc.mjs           one esbuild bundle of src/cli/main.ts with its packages, beside a
#                           package.json named qalc (PROJECT_ROOT), templates/ and the addons
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
mkdir -p "$dev/qalc/build/Release" "$dev/data"
cd "$root"
xz -T2 -c "$(command -v node)" > "$dev/node.xz"
# The launcher (src/cli/qalc.mjs) bundles on demand; this bundle runs main() itself.
echo "import { main } from '../../src/cli/main.ts'; process.exitCode = await main(process.argv.slice(2));" > "$dev/entry.ts"
npx esbuild "$dev/entry.ts" --bundle --platform=node --format=esm --target=node20 --log-level=error \
  --outfile="$dev/qalc/qalc.mjs" --external:webgpu --external:playwright-core --external:esbuild \
  --banner:js="import { createRequire as __qalcRequire } from 'node:module'; const require = __qalcRequire(import.meta.url);"
rm "$dev/entry.ts"
echo '{ "name": "qalc", "type": "module", "private": true }' > "$dev/qalc/package.json"
cp -r templates "$dev/qalc/templates"
cp build/Release/qalc_cpu.node build/Release/qalc_cuda.node "$dev/qalc/build/Release/"
cp "$shared/models/stories260K/stories260K.bin" "$shared/models/stories260K/tok512.bin" "$dev/data/"
head -c 300000 "$shared/data/tinyshakespeare.txt" > "$dev/data/tinyshakespeare.txt"
sed -e 's#"../../shared/models/stories260K/#"data/#' -e 's#"../../shared/data/#"data/#' \
  -e "s#steps = 200#steps = $steps#" -e 's#eval_every = 50#eval_every = 10#' -e "s#checkpoint_every = 50#checkpoint_every = $steps#" \
  -e 's#arch = \[sm_80, sm_90a\]#arch = [sm_90a]#' examples/stories260k.qal > "$dev/stories260k.qal"
node src/cli/qalc.mjs compile "$dev/stories260k.qal" --out "$dev/compiled"
rm -rf "$dev/compiled/wgsl"
du -sh "$dev"
