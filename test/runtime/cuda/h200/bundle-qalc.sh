#!/usr/bin/env bash
# Puts, into DEV (a folder under .device/, git-ignored, carried to the GPU machine, which has no
# Node.js and no internet), what runs qalc there:
#   DEV/node.xz          this machine's node binary (the device script unpacks it to /tmp/node)
#   DEV/qalc/qalc.mjs    one esbuild bundle of src/cli/main.ts with its packages (and its
#                        random-weights worker), beside a
#                        package.json named qalc (PROJECT_ROOT), templates/ and the addons
# Shared by test/runtime/cuda/h200/prepare.sh (stories260K) and test/bench/cuda/train/prepare.sh (7B shape).
#   test/runtime/cuda/h200/bundle-qalc.sh DEV
set -euo pipefail
dev="${1:?usage: bundle-qalc.sh DEV}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"
mkdir -p "$dev/qalc/build/Release"
cd "$root"
xz -T2 -c "$(command -v node)" > "$dev/node.xz"
# The launcher (src/cli/qalc.mjs) bundles on demand; this bundle runs main() itself.
entry="$(mktemp -d)/entry.ts"
echo "import { main } from '$root/src/cli/main.ts'; process.exitCode = await main(process.argv.slice(2));" > "$entry"
npx esbuild "$entry" --bundle --platform=node --format=esm --target=node20 --log-level=error \
  --outfile="$dev/qalc/qalc.mjs" --external:webgpu --external:playwright-core --external:esbuild \
  --banner:js="import { createRequire as __qalcRequire } from 'node:module'; const require = __qalcRequire(import.meta.url);"
rm -r "$(dirname "$entry")"
# The random weights of a large shape are drawn and quantized on worker threads
# (src/train/random-weights-parallel.ts loads ./random-weights-worker.js beside the bundle).
npx esbuild src/train/random-weights-worker.ts --bundle --platform=node --format=esm --target=node20 --log-level=error \
  --outfile="$dev/qalc/random-weights-worker.js" \
  --banner:js="import { createRequire as __qalcRequire } from 'node:module'; const require = __qalcRequire(import.meta.url);"
echo '{ "name": "qalc", "type": "module", "private": true }' > "$dev/qalc/package.json"
rm -rf "$dev/qalc/templates"
cp -r templates "$dev/qalc/templates"
cp build/Release/qalc_cpu.node build/Release/qalc_cuda.node "$dev/qalc/build/Release/"
