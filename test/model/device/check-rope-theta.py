#!/usr/bin/env python3
"""transformers' logits for stories260K-hf under rope_theta 1e6 and rms_norm_eps 1e-6 against qalc's.

OUT comes from rope-theta-logits.ts (run here, with Node): OUT/model is the fixture's weights with
the changed config.json, OUT/qalc-logits.json qalc's LlamaForward logits for the fixture's
prompt. Run on the machine with torch and transformers (the CPU is enough):

    python3 test/model/device/check-rope-theta.py OUT

It prints the largest logit difference between transformers and qalc (relative past ±1, as the
fixture's own test measures), and how far the same weights under the default config are from
qalc's, to show the θ and ε are what the two agree on; it exits 1 past TOLERANCE.
"""
import json
import sys
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

TOLERANCE = 1e-5


def logits_of(folder: Path, ids, **override):
    config = LlamaConfig.from_pretrained(folder, **override)
    model = LlamaForCausalLM.from_pretrained(folder, config=config, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def worst(a, b):
    return ((a - b).abs() / b.abs().clamp(min=1)).max().item()


def main(out: Path) -> int:
    qalc = json.loads((out / "qalc-logits.json").read_text())
    ids, expected = qalc["input_ids"], torch.tensor(qalc["logits"], dtype=torch.float32)
    config = json.loads((out / "model" / "config.json").read_text())
    print(f"config.json: rope_parameters {config.get('rope_parameters')}, rms_norm_eps {config.get('rms_norm_eps')}")
    theirs = logits_of(out / "model", ids)
    default = logits_of(out / "model", ids, rms_norm_eps=1e-5, rope_parameters={"rope_theta": 10000.0, "rope_type": "default"})
    gap = worst(theirs, expected)
    print(f"transformers vs qalc, {len(ids)} positions x {expected.shape[1]} logits: {gap:.3g} (tolerance {TOLERANCE})")
    print(f"transformers with the default theta and eps vs qalc: {worst(default, expected):.3g}")
    print(f"argmax agrees at every position: {bool((theirs.argmax(-1) == expected.argmax(-1)).all())}")
    return 0 if gap <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
