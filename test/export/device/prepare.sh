#!/usr/bin/env bash
# Trains stories260K briefly under two specs and exports their adapters for check-peft.py:
# peft-lora from groups of 32 (43 for the down projection), peft-qalora from one group (4) for
# every layer, as use_qalora requires. Run here (Node), then copy $OUT to the machine with
# torch + transformers + PEFT and run check-peft.py on its two folders.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
SHARED="$(cd "$ROOT/../shared" && pwd)"
OUT="${1:-/tmp/qalc-peft-check}"
mkdir -p "$OUT"
head -c 200000 "$SHARED/data/tinyshakespeare.txt" > "$OUT/shakespeare.txt"
spec() { # name group down_group
  cat > "$OUT/$1.qal" <<SPEC
spec $1
model {
  checkpoint = "$SHARED/models/stories260K/stories260K.bin"
  tokenizer = "$SHARED/models/stories260K/tok512.bin"
}
quant { bits = 4  group = $2 }
override proj down { group = $3 }
adapter { rank = 2  alpha = 4 }
train {
  data = "$OUT/shakespeare.txt"
  seq_len = 64
  batch = 8
  steps = 60
  lr = 1e-2
  eval_every = 60
  checkpoint_every = 60
}
SPEC
}
spec lora_g32 32 43
spec qalora_g4 4 4
cd "$ROOT"
node src/cli/qalc.mjs train "$OUT/lora_g32.qal" --out "$OUT/run-lora"
node src/cli/qalc.mjs train "$OUT/qalora_g4.qal" --out "$OUT/run-qalora"
node src/cli/qalc.mjs export "$OUT/lora_g32.qal" --run "$OUT/run-lora" --format peft-lora --with-base --out "$OUT/peft-lora"
node src/cli/qalc.mjs export "$OUT/qalora_g4.qal" --run "$OUT/run-qalora" --format peft-qalora --with-base --out "$OUT/peft-qalora"
echo "now: python3 test/export/device/check-peft.py $OUT/peft-lora $OUT/peft-qalora"
