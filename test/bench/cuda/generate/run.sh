#!/usr/bin/env bash
# The 7B-shaped generation benchmark of issue 11, in one device call: a correctness check on
# stories260K, then qalc generate --backend cuda and transformers' generate on the same shape,
# one after the other (never two on the GPU at once), then the report (report.mjs):
# $OUT/generate-bench.json, $OUT/generate-bench.md, $OUT/log.txt.
#
# Built here by test/bench/cuda/generate/prepare.sh into .device/generate7b/; on the device:
#   bash .device/generate7b/run.sh                # carry: [".device/generate7b"]
#
# Parts, in this order, and their expected durations on the H200 (each survives the failure of
# any other: a part that fails or runs out of time is reported missing, the rest stand):
#   stories260K: qalc train --backend cuda 4 steps, then qalc generate of that run on cpu and on
#   cuda, greedy, STORIES_STEPS (96) forward passes: the two texts must be equal     ~20 s
#   qalc generate llama2-7b.qal --backend cuda --random-weights, 32 blocks, STEPS (136) forward
#   passes (the prompt's included), greedy, the decode step replayed from a CUDA graph
#                                                         ~70 s of host setup (the random weights
#                                                         drawn and quantized on 16 threads) + the run
#   the same with QALC_CUDA_GRAPH=0 (every op launched from the host each token): its text must
#   be the graph run's                                                              ~70 s
#   the same with --merged: the adapters folded into the zeros in memory, decoded on the merged
#   plan's kernels (built there by nvcc: not in compiled/)                   ~70 s + the build
#   transformers' generate, bf16, 32 blocks, an 8-token random prompt, NEW (128) new tokens, 3
#   timed runs after a warm-up                                                      ~40 s
#   qalc again, profiled (QALC_CUDA_PROFILE=events: GPU time by kind, and the GPU's idle time
#   waiting for the host), with QALC_CUDA_GRAPH=0 so that each kernel is timed (a replayed graph
#   is timed whole), if the budget allows                                           ~90 s
#   report                                                                          ~1 s
# BUDGET_S (default 540) bounds the whole.
set -uo pipefail
dev="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-/tmp/generate-bench-out}"
work="${WORK:-/tmp/generate-bench}"
budget="${BUDGET_S:-540}"
steps="${STEPS:-136}"
new="${NEW:-128}"
stories_steps="${STORIES_STEPS:-96}"
prompt="${PROMPT:-Once upon a time, in a land far away,}"
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

if ! { xz -dc "$dev/node.xz" > "$work/node" && chmod +x "$work/node" && { [ -f "$dev/qalc/qalc.mjs" ] || xz -dk "$dev/qalc/qalc.mjs.xz"; }; }; then
  echo "could not unpack node: no qalc run"
fi
qalc() { "$work/node" "$dev/qalc/qalc.mjs" "$@"; }

# 1. Correctness on a real model: the cuda decode path prints the cpu backend's greedy text.
if [ -x "$work/node" ]; then
  stamp "stories260K: train 4 steps on cuda, generate on cpu and cuda"
  stories="$dev/stories/stories.qal" kernels="$dev/stories/compiled/cuda" run="$work/stories-run"
  timeout 120 "$work/node" "$dev/qalc/qalc.mjs" train "$stories" --backend cuda --kernels "$kernels" --out "$run" > "$work/stories-train.log" 2>&1
  echo "train exit $?"; tail -n 3 "$work/stories-train.log"
  timeout 60 "$work/node" "$dev/qalc/qalc.mjs" generate "$stories" --out "$run" --steps "$stories_steps" --prompt "Once upon a time" > "$work/stories-cpu.txt" 2> "$work/stories-cpu.log"
  echo "generate cpu exit $?"
  timeout 120 "$work/node" "$dev/qalc/qalc.mjs" generate "$stories" --out "$run" --steps "$stories_steps" --prompt "Once upon a time" --backend cuda --kernels "$kernels" > "$work/stories-cuda.txt" 2> "$work/stories-cuda.log"
  echo "generate cuda exit $?"
  tail -n 4 "$work/stories-cuda.log"
  QALC_CUDA_GRAPH=0 timeout 120 "$work/node" "$dev/qalc/qalc.mjs" generate "$stories" --out "$run" --steps "$stories_steps" --prompt "Once upon a time" --backend cuda --kernels "$kernels" > "$work/stories-cuda-nograph.txt" 2> "$work/stories-cuda-nograph.log"
  echo "generate cuda, QALC_CUDA_GRAPH=0, exit $?"
  echo "cpu:              $(cat "$work/stories-cpu.txt")"
  echo "cuda:             $(cat "$work/stories-cuda.txt")"
  echo "cuda, no graph:   $(cat "$work/stories-cuda-nograph.txt")"
fi

# 2. qalc at the whole 7B shape, alone on the GPU. Its stderr goes straight to $OUT (it comes back
# even if the call is cut short).
# qalc_part NAME RESERVE [VAR=VALUE ...] [-- qalc generate's own arguments]
qalc_part() {
  local name="$1" reserve="$2"; shift 2
  local settings=() args=(--kernels "$dev/compiled/cuda")
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do settings+=("$1"); shift; done
  [ "${1:-}" = "--" ] && { shift; args=("$@"); }
  local limit=$(( $(left) - reserve ))
  if [ "$limit" -lt 90 ]; then stamp "skip $name: $(left) s left"; return; fi
  stamp "$name: qalc generate llama2-7b.qal --backend cuda --random-weights --steps $steps ${args[*]} (limit ${limit} s)"
  env "${settings[@]}" timeout "$limit" "$work/node" "$dev/qalc/qalc.mjs" generate "$dev/llama2-7b.qal" --backend cuda --random-weights \
    "${args[@]}" --out "$work/no-run" --steps "$steps" --prompt "$prompt" > "$work/$name.txt" 2> "$out/$name.log"
  echo "qalc exit $?"
  cp "$out/$name.log" "$work/$name.log"
  tail -n 12 "$out/$name.log"
}
[ -x "$work/node" ] && qalc_part qalc-generate 200
[ -x "$work/node" ] && qalc_part qalc-generate-nograph 120 QALC_CUDA_GRAPH=0
# The merged model (the adapters folded into float zeros, the plan without adapters): its kernels
# are not in compiled/ (another plan), so this run emits them and the device's nvcc builds them.
[ -x "$work/node" ] && qalc_part qalc-generate-merged 100 -- --merged

# 3. transformers' generate on the bf16 model of the same shape.
limit=$(( $(left) - 20 ))
[ "$limit" -gt 240 ] && limit=240
if [ "$limit" -ge 30 ]; then
  stamp "transformers generate, bf16, 32 blocks (limit ${limit} s)"
  if timeout "$limit" python3 "$dev/reference.py" --layers 32 --prompt 8 --new "$new" > "$work/transformers.out" 2> "$work/transformers.err"; then
    tail -n 1 "$work/transformers.out" > "$work/transformers.json"
    cat "$work/transformers.json"
  else
    echo "transformers failed (exit $?):"; tail -n 15 "$work/transformers.err"
  fi
else
  stamp "skip transformers: $(left) s left"
fi

# 4. qalc again with every device call timed by CUDA events (its split only is reported).
[ -x "$work/node" ] && qalc_part qalc-generate-profiled 15 QALC_CUDA_PROFILE=events QALC_CUDA_GRAPH=0

if [ -x "$work/node" ]; then
  stamp "report (the table is the last thing printed)"
  # Exit 1: a self-check failed (its box is unticked above); more: report.mjs itself failed.
  "$work/node" "$dev/report.mjs" "$work" "$out"
  rc=$?
  [ "$rc" = 1 ] && echo "report: a self-check failed (the unticked boxes above)"
  [ "$rc" -gt 1 ] && { echo "report.mjs failed (exit $rc); the parts:"; cat "$work"/*.json "$work"/*.log 2>/dev/null | tail -n 40; }
else
  echo "no node: no report"; cat "$work"/*.json 2>/dev/null
fi
sleep 1
