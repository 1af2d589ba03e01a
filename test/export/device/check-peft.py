#!/usr/bin/env python3
"""Load qalc's PEFT exports with transformers + PEFT and compare logits with qalc's.

Run on a machine with torch, transformers and peft (the GPU machine has transformers 5.17 and
PEFT 0.21; the CPU is enough, the model is stories260K). First, here:

    node src/cli/qalc.mjs export SPEC --run RUN --format peft-lora --with-base --out /tmp/peft-lora
    # use_qalora needs one group size for every layer (e.g. quant { group = 4 }, no override):
    node src/cli/qalc.mjs export SPEC2 --run RUN2 --format peft-qalora --with-base --out /tmp/peft-qalora

then, there:

    python3 test/export/device/check-peft.py /tmp/peft-lora [/tmp/peft-qalora ...]

Each folder holds adapter_config.json + adapter_model.safetensors (the export), base/ (the
dequantized, unmerged quantized base in Hugging Face layout, which the adapter applies to) and
qalc-logits.json (qalc's logits of the merged model on a prompt, every position). The script
prints, per folder, the largest logit difference between PEFT's model and qalc's, the same for
the base without the adapter (to show the adapter is what closes the gap), and whether the
argmax agrees at every position; it exits 1 if any folder differs by more than TOLERANCE.

PEFT applies `use_qalora` only to GPTQ layers (its QALoraLinearVariant is chosen by the GPTQ
wrapper). On this dense base the script attaches PEFT's own QALoraLinearVariant to each LoRA
layer by hand — PEFT's code does the pooling, the script only wires it in — and says so.
"""
import inspect
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM
import peft
from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict

TOLERANCE = 1e-3  # float32 logits of magnitude ~10, summed in other orders


def load_base(folder: Path):
    try:
        model = LlamaForCausalLM.from_pretrained(folder / "base", dtype=torch.float32, attn_implementation="eager")
    except TypeError:
        model = LlamaForCausalLM.from_pretrained(folder / "base", torch_dtype=torch.float32, attn_implementation="eager")
    return model.eval()


def logits_of(model, tokens):
    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0].double()


def with_plain_lora(base, folder: Path):
    return PeftModel.from_pretrained(base, folder).eval()


def with_qalora(base, folder: Path, config: dict):
    from peft.tuners.lora.variants import QALoraLinearVariant
    from peft.tuners.lora.layer import Linear as LoraLinear

    lora = LoraConfig(
        r=config["r"], lora_alpha=config["lora_alpha"], target_modules=config["target_modules"],
        rank_pattern=config.get("rank_pattern") or {}, alpha_pattern=config.get("alpha_pattern") or {},
        lora_dropout=0.0, bias="none", init_lora_weights=False,
    )
    model = get_peft_model(base, lora)
    group = config["qalora_group_size"]
    # PEFT 0.21's init(module, adapter_name, config, **kwargs) reads the group from the config;
    # earlier versions took it as a keyword.
    init_arguments = {"qalora_group_size": group}
    if "config" in inspect.signature(QALoraLinearVariant.init).parameters:
        init_arguments["config"] = LoraConfig(
            r=config["r"], lora_alpha=config["lora_alpha"], target_modules=config["target_modules"],
            lora_dropout=0.0, bias="none", init_lora_weights=False, use_qalora=True, qalora_group_size=group,
        )
    wired = 0
    for name, module in model.named_modules():
        if isinstance(module, LoraLinear) and "default" in module.lora_A:
            QALoraLinearVariant.init(module, "default", **init_arguments)
            module.lora_variant["default"] = QALoraLinearVariant()
            wired += 1
    state = load_file(folder / "adapter_model.safetensors")
    result = set_peft_model_state_dict(model, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise SystemExit(f"{folder}: PEFT did not take {len(unexpected)} tensors, e.g. {unexpected[:3]}")
    print(f"  (use_qalora: PEFT's QALoraLinearVariant attached by hand to {wired} LoRA layers of the dense base, group {group})")
    return model.eval()


def check(folder: Path) -> bool:
    config = json.loads((folder / "adapter_config.json").read_text())
    reference = json.loads((folder / "qalc-logits.json").read_text())
    tokens = reference["tokens"]
    qalc = torch.tensor(reference["logits"], dtype=torch.float64)
    base = load_base(folder)
    base_diff = (logits_of(base, tokens) - qalc).abs().max().item()
    model = with_qalora(base, folder, config) if config.get("use_qalora") else with_plain_lora(base, folder)
    ours = logits_of(model, tokens)
    diff = (ours - qalc).abs().max().item()
    argmax = bool((ours.argmax(-1) == qalc.argmax(-1)).all())
    print(f"{folder}: use_qalora={config.get('use_qalora')} tokens={len(tokens)} "
          f"max |PEFT - qalc| = {diff:.3e} (base without adapter: {base_diff:.3e}); argmax agrees at every position: {argmax}")
    return diff <= TOLERANCE and argmax


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    print(f"torch {torch.__version__}, peft {peft.__version__}")
    ok = [check(Path(arg)) for arg in sys.argv[1:]]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
