#!/usr/bin/env bash
# The 32-block LLaMA-2-7B shape's setup on the H200, host RTN against the device's compiled
# quantize kernels, in one device call: `qalc train --random-weights --backend cuda --steps 1`
# twice, QALC_CUDA_QUANTIZE=host then =device: each one's wall time, its setup (the wall time less
# summary.json's seconds of training and evaluation) and qalc's own "random weights: …" line (the
# weights' part of the setup: drawing or waiting for the workers' draws, uploading and quantizing).
# Then a table, the last thing printed.
#
# Built here by test/bench/cuda/train/prepare.sh into .device/train7b/ (beside run.sh); on the device:
#   bash .device/train7b/setup-time.sh               # carry: [".device/train7b"]
#
# Expected (measured here, one thread of a shared 2-core machine: a 7B block's draw 3.4 s, its
# RTN 10.5 s; the H200 host's 16 threads measured ~70 s for the whole host setup):
#   host    random weights ~70 s (draw + RTN on 16 worker threads), the step after it
#   device  random weights ~7-15 s: the draw alone on 16 workers (32 × 3.4 s / 16 ≈ 7 s here-speed),
#           26 GB of floats uploaded a projection at a time while the workers draw on (~3 s at
#           ~10 GB/s from pageable memory), the quantize and pack kernels < 0.1 s in all, the fp16
#           scales read back, rounded and sent up (0.4 GB each way, ~0.5 s of host rounding)
# The losses of the two runs' one step are the same (the same codes, scales and zeros).
# Each run at most LIMIT_S (default 240) seconds.
set -uo pipefail
dev="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${OUT:-/tmp/setup-time-out}"
work="${WORK:-/tmp/setup-time}"
limit="${LIMIT_S:-240}"
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work"
exec > >(tee -a "$out/log.txt") 2>&1
echo "setup-time: $(cat "$dev/commit.txt" 2>/dev/null || echo 'commit unknown'); $(nproc) cores"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
xz -dc "$dev/node.xz" > "$work/node" && chmod +x "$work/node" && { [ -f "$dev/qalc/qalc.mjs" ] || xz -dk "$dev/qalc/qalc.mjs.xz"; } || { echo "could not unpack node"; exit 1; }

rows=()
for path in host device; do
  log="$out/qalc-$path.log"
  echo "== QALC_CUDA_QUANTIZE=$path (limit ${limit} s)"
  started=$(date +%s.%N)
  QALC_CUDA_QUANTIZE="$path" timeout "$limit" "$work/node" "$dev/qalc/qalc.mjs" train "$dev/llama2-7b.qal" --random-weights --backend cuda \
    --kernels "$dev/compiled/cuda" --steps 1 --out "$work/qalc-$path" 2> "$log"
  status=$?
  ended=$(date +%s.%N)
  tr '\r' '\n' < "$log" | grep -E "random weights:|frozen weights|rror" | head -n 6
  wall="$(awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.1f", b - a }')"
  # summary.json's seconds: the step (and the evaluations); the rest of the wall time is setup.
  trained="$(grep -o '"seconds": *[0-9.e+-]*' "$work/qalc-$path/summary.json" 2>/dev/null | head -n 1 | grep -o '[0-9.e+-]*$')"
  loss="$(grep -o '"loss":[^,]*' "$work/qalc-$path/train.jsonl" 2>/dev/null | head -n 1 | cut -d: -f2)"
  weights="$(tr '\r' '\n' < "$log" | grep -o 'random weights: drawn.*' | head -n 1)"
  rows+=("$(printf '| %s | %s | %s | %s | %s | %s |' "$path" "$status" "$wall" "$(awk -v a="$wall" -v b="${trained:-0}" 'BEGIN { printf "%.1f", a - b }')" "${loss:-none}" "${weights#random weights: }")")
done

echo
echo "32-block LLaMA-2-7B shape (INT4 g32, fp16 scales), qalc train --random-weights --backend cuda --steps 1"
echo "| quantize | exit | whole run (s) | setup: run less summary seconds (s) | loss of step 1 | random weights (qalc's own split) |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
sleep 1
