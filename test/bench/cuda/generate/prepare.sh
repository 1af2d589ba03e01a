#!/usr/bin/env bash
# Builds, here, everything test/bench/cuda/generate/run.sh needs on the GPU machine (no Node.js,
# no internet there) into .device/generate7b/ (git-ignored; carry it: `carry: [".device/generate7b"]`):
#   node.xz, qalc/        node and the qalc bundle (test/runtime/cuda/h200/bundle-qalc.sh), the
#                         bundle as qalc/qalc.mjs.xz
#   reference.py          transformers' generate on the bf16 model (copied from here), and
#                         train_reference.py (../train/reference.py: the model it builds)
#   run.sh, report.mjs    the device script and the report it writes (copied from here)
#   commit.txt            the commit it was built from (marked when src/ or this folder has changes)
#   data/                 the LLaMA 2 tokenizer (tokenizer.model) and train.txt (the first 20,000
#                         characters of tinyshakespeare: generate builds the spec's model as train
#                         does, which reads the train block's data)
#   llama2-7b.qal         examples/llama2-7b-int4-g32.qal: sm_90a only, paths into data/, plain text
#   stories/stories.qal   stories260K (its real weights, INT4 g16 / g43 down, rank 4) with its
#                         checkpoint and tokenizer beside it: run.sh trains it 4 steps on cuda and
#                         checks that generate on cuda prints what generate on cpu prints
#   compiled/, stories/compiled/   `qalc compile` of each spec (fatbins too unless --no-build: then
#                         the device builds what generate loads when it loads them, with its nvcc)
#
#   test/bench/cuda/generate/prepare.sh [--no-build]
set -euo pipefail
build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    *) echo "usage: prepare.sh [--no-build]" >&2; exit 2 ;;
  esac
done
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
shared="$(cd "$root/../shared" && pwd)"
dev="$root/.device/generate7b"
rm -rf "$dev"
mkdir -p "$dev/data" "$dev/stories"
bash "$root/test/runtime/cuda/h200/bundle-qalc.sh" "$dev"
cd "$root"
cp "$here/reference.py" "$here/run.sh" "$here/report.mjs" "$dev/"
# The bf16 model is built as the train benchmark builds it (reference.py imports its build_base).
cp "$here/../train/reference.py" "$dev/train_reference.py"
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src templates test/bench/cuda/generate || echo ' + uncommitted changes')" > "$dev/commit.txt"
cp "$shared/models/llama2-tokenizer/tokenizer.model" "$dev/data/"
head -c 20000 "$shared/data/tinyshakespeare.txt" > "$dev/data/train.txt"
sed -e 's#"../../shared/models/llama2-tokenizer/#"data/#' -e 's#^  data = .*#  data = "data/train.txt"#' -e '/^  format = alpaca$/d' \
  -e 's#arch = \[sm_80, sm_90a\]#arch = [sm_90a]#' examples/llama2-7b-int4-g32.qal > "$dev/llama2-7b.qal"
grep -q 'data = "data/train.txt"' "$dev/llama2-7b.qal" && grep -q 'arch = \[sm_90a\]' "$dev/llama2-7b.qal"
cp "$shared/models/stories260K/stories260K.bin" "$shared/models/stories260K/tok512.bin" "$dev/stories/"
cp "$dev/data/train.txt" "$dev/stories/train.txt"
cat > "$dev/stories/stories.qal" <<'SPEC'
spec stories260k_generate
model {
  checkpoint = "stories260K.bin"
  tokenizer = "tok512.bin"
}
quant { bits = 4  group = 16 }
override proj down { group = 43 }
adapter { kind = qalora  rank = 4  alpha = 8  dropout = 0.05 }
target cuda { arch = [sm_90a]  activation = bf16 }
train {
  data = "train.txt"
  seq_len = 64
  batch = 4
  steps = 4
  lr = 1e-2
  eval_every = 1000000
  checkpoint_every = 1000000
}
SPEC
no_build=()
[ "$build" = 1 ] || no_build=(--no-build)
# Compiled from this checkout's sources through tsx, not src/cli/qalc.mjs: that launcher bundles
# into node_modules/.cache, and a checkout whose node_modules is another checkout's (a worktree's
# symlink) would bundle there and read that checkout's templates/.
entry="$(mktemp -d)/qalc-from-source.mts"
echo "import { main } from '$root/src/cli/main.ts'; process.exitCode = await main(process.argv.slice(2));" > "$entry"
for spec in "$dev/llama2-7b.qal" "$dev/stories/stories.qal"; do
  npx tsx "$entry" check "$spec"
  npx tsx "$entry" compile "$spec" --out "$(dirname "$spec")/compiled" "${no_build[@]}"
  rm -rf "$(dirname "$spec")/compiled/wgsl"
done
rm -r "$(dirname "$entry")"
xz -T2 "$dev/qalc/qalc.mjs"
du -sh "$dev"
