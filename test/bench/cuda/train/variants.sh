#!/usr/bin/env bash
# qalc's 7B-shaped step under several environment settings, side by side in one device call, each
# run profiled on the GPU's clock (QALC_CUDA_PROFILE=events) — for choosing between variants a
# change puts behind an environment variable, before making one the default. Not a CI test.
#
# Built here by prepare.sh into .device/train7b/ (carry it); on the device:
#   VARIANTS="base: cublas32:QALC_CUBLAS_WORKSPACE_MIB=32 nows:QALC_CUBLAS_WORKSPACE_MIB=0" \
#     LAYERS=4 STEPS=4 bash .device/train7b/variants.sh
#
# The training step's CUDA graph against launching it op by op (plain runs, not profiled):
#   DROPOUT=0 VARIANTS="graph:QALC_CUDA_PROFILE=0 launched:QALC_CUDA_PROFILE=0,QALC_CUDA_GRAPH=0" LAYERS=32 STEPS=12 bash .device/train7b/variants.sh
#
# VARIANTS: space-separated NAME:ENV=VALUE,ENV=VALUE (NAME: alone runs the defaults). Also runs
# adapter-gemm.py first when ADAPTER_GEMM=1. Writes $OUT/variants.json (per variant: the steps'
# seconds, the profile's milliseconds a step by kind, summary.json's device record with every
# profile entry) and prints a table last.
set -uo pipefail
dev="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-/tmp/variants-out}"
work="${WORK:-/tmp/variants}"
layers="${LAYERS:-4}"
steps="${STEPS:-4}"
mkdir -p "$out" "$work"
exec > >(tee -a "$out/variants-log.txt") 2>&1
spec="$dev/llama2-7b-l$layers.qal"
[ "$layers" = 32 ] && spec="$dev/llama2-7b.qal"
[ -f "$spec" ] || { echo "no $spec: prepare.sh writes llama2-7b-l\$LAYERS.qal (LAYERS=$layers)"; exit 1; }
# DROPOUT=0: the spec's adapter dropout (0.05) set so for every variant, in a copy beside it (its
# paths are relative to its folder): with dropout the backward's kernels take the step's seed as
# a launch parameter, so its CUDA graph is never captured (step-graph.ts says so).
if [ -n "${DROPOUT:-}" ]; then
  sed -e "s/^  dropout = .*$/  dropout = $DROPOUT/" "$spec" > "${spec%.qal}-dropout-$DROPOUT.qal"
  spec="${spec%.qal}-dropout-$DROPOUT.qal"
  grep -q "^  dropout = $DROPOUT\$" "$spec" || { echo "could not set dropout = $DROPOUT in $spec"; exit 1; }
fi
cp "$dev/commit.txt" "$out/commit.txt" 2>/dev/null || true
echo "commit $(cat "$dev/commit.txt" 2>/dev/null || echo unknown), $layers blocks, $steps steps"
if [ "${ADAPTER_GEMM:-0}" = 1 ]; then
  timeout 120 python3 "$dev/adapter-gemm.py" > "$out/adapter-gemm.txt" 2>&1
  echo "adapter-gemm.py exit $?"
  cat "$out/adapter-gemm.txt"
fi
xz -dc "$dev/node.xz" > "$work/node" && chmod +x "$work/node"
[ -f "$dev/qalc/qalc.mjs" ] || xz -dk "$dev/qalc/qalc.mjs.xz"
for variant in ${VARIANTS:-base:}; do
  name="${variant%%:*}"
  settings="${variant#*:}"
  echo "== $name ($settings) $(date -u +%H:%M:%S)"
  rm -rf "$work/$name"
  (
    IFS=','
    for setting in $settings; do [ -n "$setting" ] && export "$setting"; done
    # Profiled on the GPU's clock unless the variant says QALC_CUDA_PROFILE=0 (a plain run: the
    # training step's CUDA graph is captured only then, step-graph.ts).
    QALC_CUDA_PROFILE="${QALC_CUDA_PROFILE-events}" timeout "${LIMIT_S:-150}" "$work/node" "$dev/qalc/qalc.mjs" train "$spec" --random-weights --backend cuda \
      --kernels "$dev/compiled/cuda" --steps "$steps" --out "$work/$name" 2> "$out/$name.log"
    echo "exit $?"
  )
  grep -A 25 '^profile' "$out/$name.log" | head -n 26
  grep '^train step: ' "$out/$name.log" || true
  cp "$work/$name/summary.json" "$out/$name-summary.json" 2>/dev/null || echo "$name wrote no summary.json"
  cp "$work/$name/train.jsonl" "$out/$name-train.jsonl" 2>/dev/null || true
done
python3 - "$out" ${VARIANTS:-base:} <<'EOF'
import json, os, statistics, sys
out, variants = sys.argv[1], [v.split(':', 1)[0] for v in sys.argv[2:]]
rows, table = {}, []
for name in variants:
    try:
        steps = [json.loads(l) for l in open(os.path.join(out, f'{name}-train.jsonl')) if l.strip()]
    except OSError:
        table.append(f'| {name} | missing | | |')
        continue
    steady = steps[1:] or steps
    seconds = statistics.median(s['seconds'] for s in steady)
    kinds = sorted({k for s in steady for k in s.get('profile_ms', {})})
    by_kind = {k: statistics.median(s.get('profile_ms', {}).get(k, 0) for s in steady) for k in kinds}
    replayed = [s['seconds'] for s in steady if s.get('backward') == 'replayed']
    replayed_s = statistics.median(replayed) if replayed else None
    rows[name] = {'step_s': seconds, 'replayed_step_s': replayed_s, 'ms_by_kind': by_kind, 'losses': [s['loss'] for s in steps]}
    replayed_text = f'{replayed_s * 1000:.1f} ({len(replayed)})' if replayed else '—'
    table.append(f"| {name} | {seconds * 1000:.1f} | {replayed_text} | {', '.join(f'{k} {v:.1f}' for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]))} | {steps[-1]['loss']:.4f} |")
json.dump(rows, open(os.path.join(out, 'variants.json'), 'w'), indent=1)
print('| variant | step ms (median, steps 2+) | backward replayed from the CUDA graph: step ms (steps) | GPU ms a step by kind | last loss |')
print('|---|---:|---:|---|---:|')
print('\n'.join(table))
EOF
sleep 1
