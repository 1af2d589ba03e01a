#!/usr/bin/env bash
# The 7B-shaped fine-tune benchmark of issue 11, in one device call: the bf16 GEMM ceiling, the
# PyTorch anchors and qalc, on the same GPU, one after the other (never two on the GPU at once),
# then the report (report.mjs): $OUT/train-bench.json, $OUT/train-bench.md, $OUT/log.txt.
#
# Built here by test/bench/cuda/train/prepare.sh into .device/train7b/; on the device:
#   bash .device/train7b/run.sh                # carry: [".device/train7b"]
#
# Parts, in this order, and their expected durations on the H200 (each part survives the failure
# of any other: a part that fails or runs out of time is reported missing, the rest stand):
#   gemm ceiling, 8192³ bf16                                      ~15 s (most of it importing torch)
#   PyTorch anchors at QALC_LAYERS blocks (4): peft-lora, qalora-eager
#                                                                 ~25 s each (import, build, 3 + 10 steps, 1 profiled)
#   qalc train --random-weights --backend cuda at QALC_LAYERS blocks, STEPS (6) steps, then again
#   profiled (QALC_CUDA_PROFILE=events: GPU time by CUDA events), 3 steps: ~40 s and ~30 s
#   PyTorch anchors at 32 blocks (the issue's table)              ~45 s each
#   qalc at 32 blocks, the same two runs                          ~90 s and ~85 s with the host's
#                                                                 setup of ~70 s each (QALC_CUDA_QUANTIZE=host:
#                                                                 drawn and quantized on 16 worker threads);
#                                                                 expected ~10-15 s each now (drawn on the
#                                                                 workers, quantized on the GPU: setup-time.sh)
#   report                                                        ~1 s
# The plain runs capture the step's backward as a CUDA graph once it has settled (step 4 on) and
# replay it; QALC_CUDA_GRAPH=0 in the environment launches it op by op (the report's "train step:"
# note says which, with the replayed and the launched steps' medians; STEPS=10 gives it 6
# replayed steps). The profiled runs never capture (a profile times every call).
# ≈ 7 min in all. BUDGET_S (default 540) bounds the whole; each PyTorch part gets at most 150 s;
# qalc at 4 blocks leaves RESERVE_S (330 s) for the parts at 32 blocks. QALC_LAYERS=32 runs the
# 32-block parts only.
set -uo pipefail
dev="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-/tmp/train-bench-out}"
work="${WORK:-/tmp/train-bench}"
budget="${BUDGET_S:-540}"
# qalc's depth: the written-out spec prepare.sh made (llama2-7b-l<L>.qal), unless QALC_LAYERS says.
written="$(ls "$dev"/llama2-7b-l*.qal 2>/dev/null | head -n 1)"
written="${written##*-l}"
written="${written%.qal}"
qalc_layers="${QALC_LAYERS:-${written:-4}}"
steps="${STEPS:-6}"
# QALC_BACKEND=cpu checks this script's plumbing on a machine without a GPU (with a tiny spec as
# llama2-7b-l<L>.qal): the PyTorch parts fail there and are reported missing.
backend="${QALC_BACKEND:-cuda}"
# The GPU machine has no internet: nothing here downloads, and the hub must not try.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"
cp "$dev/commit.txt" "$work/commit.txt" 2>/dev/null || true
started=$(date +%s)
left() { echo $(( budget - ($(date +%s) - started) )); }
exec > >(tee -a "$out/log.txt") 2>&1
stamp() { echo "== $(date -u +%H:%M:%S) (+$(( $(date +%s) - started )) s) $*"; }

stamp "start: $(cat "$work/commit.txt" 2>/dev/null || echo 'commit unknown')"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm --format=csv,noheader || true
python3 -c 'import torch, transformers, peft; print("torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)' || true

# One PyTorch part: its JSON line to $work/NAME.json, its stderr tail to the log; at most 150 s,
# and never past the budget (less 20 s for the report).
pytorch_part() {
  local name="$1"; shift
  local limit; limit=$(( $(left) - 20 ))
  if [ "$limit" -lt 30 ]; then stamp "skip $name: $(left) s left"; return; fi
  [ "$limit" -gt 150 ] && limit=150
  stamp "$name (limit ${limit} s)"
  if timeout "$limit" python3 "$dev/reference.py" "$@" > "$work/$name.out" 2> "$work/$name.err"; then
    tail -n 1 "$work/$name.out" > "$work/$name.json"
    cat "$work/$name.json"
  else
    echo "$name failed (exit $?):"; tail -n 15 "$work/$name.err"
  fi
}

# Order: what the comparison at qalc's depth needs first (the ceiling, both anchors at that depth,
# qalc), then the anchors at 32 blocks, for which qalc leaves RESERVE_S (default 170 s).
pytorch_part gemm gemm
if [ "$qalc_layers" != 32 ]; then
  pytorch_part "peft-lora-l$qalc_layers" peft-lora --layers "$qalc_layers"
  pytorch_part "qalora-eager-l$qalc_layers" qalora-eager --layers "$qalc_layers"
fi

# One qalc part at LAYERS blocks, alone on the GPU: nvidia-smi samples memory.used every 0.2 s
# (the first line, taken before qalc starts, is the idle baseline), in case its summary.json has
# no device peak; then, if the budget allows, a second, shorter run with every device call timed
# by CUDA events (QALC_CUDA_PROFILE=events: each call's GPU time and the GPU's idle gaps; only its
# split is reported). Each leaves RESERVE (s) of the budget to what follows it.
qalc_part() {
  local layers="$1" reserve="$2" spec="$dev/llama2-7b-l$1.qal"
  [ "$layers" = 32 ] && spec="$dev/llama2-7b.qal"
  local limit=$(( $(left) - reserve ))
  if [ "$limit" -lt 60 ]; then stamp "skip qalc at $layers blocks: $(left) s left"; return; fi
  stamp "qalc train $(basename "$spec") --steps $steps (limit ${limit} s)"
  local memory="$work/qalc-l$layers.memory"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1 > "$memory" || true
  ( while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1; sleep 0.2; done ) >> "$memory" 2>/dev/null &
  local sampler=$!
  rm -rf "$work/qalc-l$layers"
  # Its stderr goes straight to $OUT (it comes back even if the call is cut short), then to the log.
  timeout "$limit" "$work/node" "$dev/qalc/qalc.mjs" train "$spec" --random-weights --backend "$backend" \
    --kernels "$dev/compiled/cuda" --steps "$steps" --out "$work/qalc-l$layers" 2> "$out/qalc-l$layers.log"
  echo "qalc exit $?"
  cp "$out/qalc-l$layers.log" "$work/qalc-l$layers.log"
  tail -n 30 "$out/qalc-l$layers.log"
  kill "$sampler" 2>/dev/null
  wait "$sampler" 2>/dev/null
  cat "$work/qalc-l$layers/summary.json" 2>/dev/null || echo "qalc wrote no summary.json"
  cp "$work/qalc-l$layers/train.jsonl" "$out/qalc-l$layers-train.jsonl" 2>/dev/null || true
  limit=$(( $(left) - reserve ))
  if [ "$limit" -ge 60 ]; then
    stamp "qalc train at $layers blocks, profiled, 3 steps (limit ${limit} s)"
    QALC_CUDA_PROFILE=events timeout "$limit" "$work/node" "$dev/qalc/qalc.mjs" train "$spec" --random-weights --backend "$backend" \
      --kernels "$dev/compiled/cuda" --steps 3 --out "$work/qalc-l$layers-profiled" 2> "$out/qalc-l$layers-profiled.log"
    echo "qalc (profiled) exit $?"
    # Every entry of the profile (the log prints the costliest 20): summary.json's device.profile.
    cp "$work/qalc-l$layers-profiled/summary.json" "$out/qalc-l$layers-profile.json" 2>/dev/null || true
    grep -A 30 '^profile' "$out/qalc-l$layers-profiled.log" | head -n 31
  else
    stamp "skip the profiled qalc run at $layers blocks: $(left) s left"
  fi
}

if xz -dc "$dev/node.xz" > "$work/node" && chmod +x "$work/node" && { [ -f "$dev/qalc/qalc.mjs" ] || xz -dk "$dev/qalc/qalc.mjs.xz"; }; then
  # At qalc's written-out depth first, leaving RESERVE_S for the anchors and qalc at 32 blocks.
  [ "$qalc_layers" != 32 ] && qalc_part "$qalc_layers" "${RESERVE_S:-330}"
else
  echo "could not unpack node: no qalc run"
fi

pytorch_part peft-lora-l32 peft-lora --layers 32
pytorch_part qalora-eager-l32 qalora-eager --layers 32
# The whole 7B shape: its random weights drawn on 16 worker threads and quantized on the GPU
# (~70 s when the host quantized them too: setup-time.sh measures both), then ~0.3 s a step.
[ -x "$work/node" ] && qalc_part 32 "${RECOMPUTE_RESERVE_S:-30}"

# RECOMPUTE=1 (or blocks, mlp, projections, a number: the train block's `recompute` values): the
# 32-block step again with train.recompute set so (activation recomputation: the peak memory it
# saves, the time it costs; RECOMPUTE=1 is `blocks`), RECOMPUTE_STEPS (4) steps (10: the step graph
# captured at 4 and replayed 6); its summary.json and train.jsonl to
# $OUT as qalc-l32-recompute-*. RECOMPUTE_EMBEDDING=host runs it with QALC_CUDA_EMBEDDING=host
# (the embedding rows gathered on the host, no table on the device), the other runs as they are.
recompute="${RECOMPUTE:-0}"
[ "$recompute" = 1 ] && recompute=blocks
if [ "$recompute" != 0 ] && [ -x "$work/node" ] && [ "$(left)" -ge 110 ]; then
  stamp "qalc train at 32 blocks with recompute = $recompute${RECOMPUTE_EMBEDDING:+, embedding on the $RECOMPUTE_EMBEDDING}, ${RECOMPUTE_STEPS:-4} steps (limit $(( $(left) - 15 )) s)"
  sed -e "s/^  max_grad_norm = \(.*\)$/  max_grad_norm = \1\n  recompute = $recompute/" "$dev/llama2-7b.qal" > "$dev/llama2-7b-recompute.qal"
  grep -q "^  recompute = $recompute\$" "$dev/llama2-7b-recompute.qal" || echo "could not set recompute in the spec"
  QALC_CUDA_EMBEDDING="${RECOMPUTE_EMBEDDING:-${QALC_CUDA_EMBEDDING:-}}" \
    timeout $(( $(left) - 15 )) "$work/node" "$dev/qalc/qalc.mjs" train "$dev/llama2-7b-recompute.qal" --random-weights --backend "$backend" \
    --kernels "$dev/compiled/cuda" --steps "${RECOMPUTE_STEPS:-4}" --out "$work/qalc-l32-recompute" 2> "$out/qalc-l32-recompute.log"
  echo "qalc (recompute) exit $?"
  tail -n 6 "$out/qalc-l32-recompute.log"
  cp "$work/qalc-l32-recompute/summary.json" "$out/qalc-l32-recompute-summary.json" 2>/dev/null || echo "no summary.json"
  cp "$work/qalc-l32-recompute/train.jsonl" "$out/qalc-l32-recompute-train.jsonl" 2>/dev/null || true
fi

if [ -x "$work/node" ]; then
  stamp "report (the table is the last thing printed)"
  "$work/node" "$dev/report.mjs" "$work" "$out" || { echo "report.mjs failed; the parts' JSON:"; cat "$work"/*.json; }
else
  echo "no node: no report; the parts' JSON:"
  cat "$work"/*.json
fi

# The device call brings back at most 8 files: everything in $OUT goes into one archive, beside
# the report and the log.
# (The folder holds no log.txt to pack: tee still writes it. tar's "file changed" is no reason to
# keep the loose files, which would push the report out of the 8.)
( cd "$out" && { tar czf parts.tgz --warning=no-file-changed --exclude parts.tgz --exclude train-bench.md --exclude train-bench.json --exclude log.txt . || true; } &&
  find . -maxdepth 1 -type f ! -name parts.tgz ! -name train-bench.md ! -name train-bench.json ! -name log.txt -delete ) || true
# Let tee finish writing the table before the call ends.
sleep 1
