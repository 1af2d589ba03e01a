#!/usr/bin/env bash
# Builds, here, everything test/bench/cuda/train/run.sh needs on the GPU machine (no Node.js, no
# internet there) into .device/train7b/ (git-ignored; carry it: `carry: [".device/train7b"]`;
# DEV_FOLDER=NAME builds .device/NAME instead):
#   node.xz, qalc/        node and the qalc bundle (test/runtime/cuda/h200/bundle-qalc.sh), the
#                         bundle as qalc/qalc.mjs.xz
#   reference.py          the PyTorch anchors and the bf16 GEMM ceiling (copied from here)
#   adapter-gemm.py       the adapter GEMMs at the 7B shape on PyTorch's cuBLAS, beside the stacked form
#   run.sh, report.mjs    the device script and the report it writes (copied from here)
#   variants.sh           qalc's step under several environment settings, profiled, side by side
#   setup-time.sh         the 32-block setup with the frozen weights quantized on the host, then on the device
#   loss-curve.sh, loss-curve-report.mjs   the 32-block loss curve, killed and resumed, and its record
#   commit.txt            the commit it was built from (marked when src/ or this folder has changes)
#   data/                 the LLaMA 2 tokenizer (tokenizer.model), train.txt (the first 200,000
#                         characters of tinyshakespeare, ~57k tokens) and eval.txt (the next 12,000,
#                         one held-out window of 2048: the evaluations before and after training are one
#                         forward each)
#   llama2-7b.qal         examples/llama2-7b-int4-g32.qal: sm_90a only, paths into data/, plain text,
#                         seq_len 2048, batch 1, STEPS steps, no evaluation or checkpoint but the last
#   llama2-7b-l$LAYERS.qal the same shape written out with LAYERS blocks instead of 32 (see run.sh:
#                         the 32-block model takes qalc's host longer to set up than one device call has)
#   compiled/             `qalc compile` of llama2-7b.qal: manifest.json and cuda/ (every .cu; the
#                         fatbins too unless --no-build). Its kernels' code is the same for both specs
#                         (the block shapes are), so one folder serves both.
#
#   test/bench/cuda/train/prepare.sh [--no-build]
#
# --no-build writes the CUDA sources without nvcc: the device builds the fatbins the trainer needs
# (20 of the 35: forward, backward_data, adapter_grad of the 3 shapes and the 11 model ops) when it
# loads them (src/runtime/cuda/kernels.ts, nvcc on its PATH, all at once on its 16 cores; about a
# minute there). With nvcc here the 35 fatbins take long on 2 shared cores, but no device time.
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
dev="$root/.device/${DEV_FOLDER:-train7b}"
steps="${STEPS:-4}"
layers="${LAYERS:-4}"
rm -rf "$dev"
mkdir -p "$dev/data"
bash "$root/test/runtime/cuda/h200/bundle-qalc.sh" "$dev"
cd "$root"
cp "$here/reference.py" "$here/adapter-gemm.py" "$here/variants.sh" "$here/run.sh" "$here/report.mjs" "$here/loss-curve.sh" "$here/loss-curve-report.mjs" "$here/setup-time.sh" "$dev/"
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src templates test/bench/cuda/train || echo ' + uncommitted changes')" > "$dev/commit.txt"
cp "$shared/models/llama2-tokenizer/tokenizer.model" "$dev/data/"
head -c 200000 "$shared/data/tinyshakespeare.txt" > "$dev/data/train.txt"
head -c 212000 "$shared/data/tinyshakespeare.txt" | tail -c 12000 > "$dev/data/eval.txt"
sed -e 's#"../../shared/models/llama2-tokenizer/#"data/#' \
  -e 's#^  data = .*#  data = "data/train.txt"\n  eval_data = "data/eval.txt"#' -e '/^  format = alpaca$/d' \
  -e 's#seq_len = 512#seq_len = 2048#' -e 's#batch = 16#batch = 1#' \
  -e "s#steps = 10000#steps = $steps\n  eval_every = 1000000\n  checkpoint_every = 1000000#" \
  -e 's#arch = \[sm_80, sm_90a\]#arch = [sm_90a]#' examples/llama2-7b-int4-g32.qal > "$dev/llama2-7b.qal"
grep -q 'seq_len = 2048' "$dev/llama2-7b.qal" && grep -q 'eval_data' "$dev/llama2-7b.qal" && grep -q 'arch = \[sm_90a\]' "$dev/llama2-7b.qal"
sed -e "s#^spec llama2_7b_int4_g32#spec llama2_7b_shape_l$layers#" \
  -e "s#^  preset = llama2_7b\$#  dim = 4096\n  hidden_dim = 11008\n  layers = $layers\n  heads = 32\n  kv_heads = 32\n  vocab = 32000\n  context = 4096#" \
  "$dev/llama2-7b.qal" > "$dev/llama2-7b-l$layers.qal"
# qalc from this checkout's src/ through tsx, not src/cli/qalc.mjs: that launcher keeps its bundle
# in node_modules/.cache, which worktrees linking one node_modules share (seen: a worktree's
# compile wrote its own manifest with another checkout's kernel templates).
entry="$(mktemp -d)/qalc.mts"
echo "import { main } from '$root/src/cli/main.ts'; process.exitCode = await main(process.argv.slice(2));" > "$entry"
qalc() { npx tsx "$entry" "$@"; }
qalc check "$dev/llama2-7b.qal"
qalc check "$dev/llama2-7b-l$layers.qal"
if [ "$build" = 1 ]; then
  qalc compile "$dev/llama2-7b.qal" --out "$dev/compiled"
else
  qalc compile "$dev/llama2-7b.qal" --out "$dev/compiled" --no-build
fi
rm -r "$(dirname "$entry")"
rm -rf "$dev/compiled/wgsl"
# The 16 MB bundle is ~2 MB in xz (run.sh unpacks it), keeping the carried folder well under 40 MiB.
xz -T2 "$dev/qalc/qalc.mjs"
du -sh "$dev"
