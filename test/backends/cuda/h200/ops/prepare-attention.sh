#!/usr/bin/env bash
# Builds, here, the attention device run into .device/attn/ (git-ignored; carry it:
# `carry: [".device/attn"]`, command `bash .device/attn/run.sh`): this commit's kernels (bf16 and
# float32 io, the bf16 tile variants) in new/, the kernels of BASE (default: main's merge base,
# the float32-io template before bf16 activations; its checks run on the same inputs) in base/, check_attention.py, cuda_driver.py
# and run.sh, which checks every kernel against float64, times the 7B shape against torch's SDPA
# flash in the same run, runs memcheck on the small shapes, and prints the timing table last.
#
#   test/backends/cuda/h200/ops/prepare-attention.sh [BASE_COMMIT]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../../.." && pwd)"
base="${1:-2a3a565}"
dev="$root/.device/attn"
rm -rf "$dev"
mkdir -p "$dev"
cd "$root"
npx tsx "$here/emit-attention-kernels.ts" "$dev/new" --variants
# The base kernels from BASE's own template and emitter (its tree unpacked in a temporary folder).
tree="$(mktemp -d)"
git archive "$base" src templates test/backends/cuda/h200/ops package.json tsconfig.json | tar -x -C "$tree"
ln -s "$root/node_modules" "$tree/node_modules"
(cd "$tree" && npx tsx test/backends/cuda/h200/ops/emit-attention-kernels.ts "$dev/base")
rm -rf "$tree"
rm -f "$dev"/*/*.cu "$dev"/*/*.ptxas.txt
cp "$here/check_attention.py" "$here/cuda_driver.py" "$dev/"
echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src templates test/backends/cuda/h200/ops || echo ' + uncommitted changes'), base $base" > "$dev/commit.txt"
cat > "$dev/run.sh" <<'RUN'
#!/usr/bin/env bash
# On the GPU machine: bash .device/attn/run.sh (OUT set by the device tool; else ./out).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-$here/out}"
mkdir -p "$out"
cat "$here/commit.txt"
nvidia-smi --query-gpu=name,driver_version,clocks.sm --format=csv,noheader 2>/dev/null || true
status=0
REPEATS="${REPEATS:-50}" PYTHONUNBUFFERED=1 timeout 150 python3 "$here/check_attention.py" --kernels "$here/new" --kernels "$here/base" --out "$out" > "$out/log.txt" 2>&1 || status=1
grep -c '| ok |' "$out/log.txt" | sed 's/^/cases ok: /'
grep '| FAIL |\|error\|failures\|timing failed' "$out/log.txt" | head -20
if command -v compute-sanitizer > /dev/null; then
  QUICK=1 timeout 60 compute-sanitizer --tool memcheck --print-limit 10 python3 "$here/check_attention.py" --kernels "$here/new" --out "$out/sanitizer" > "$out/memcheck.txt" 2>&1
  echo "memcheck exit $?"; grep 'ERROR SUMMARY' "$out/memcheck.txt" | tail -n 1
fi
sed -n '/^## LLaMA-7B/,$p' "$out/attention.md" 2>/dev/null
exit "$status"
RUN
chmod +x "$dev/run.sh"
du -sh "$dev"
