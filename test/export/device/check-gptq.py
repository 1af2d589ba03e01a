#!/usr/bin/env python3
"""Load qalc's GPTQ export the way Python tools do and compare logits with qalc's.

Run where torch and transformers are (the GPU machine). First, here:

    node src/cli/qalc.mjs export SPEC --run RUN --format gptq --out DIR
    npx tsx test/export/device/gptq-logits.ts DIR TOKENIZER      # DIR/qalc-logits.json

then, there (with test/model/gptq_fixture.py beside this script or on PYTHONPATH):

    python3 check-gptq.py DIR

1. Independent decode: the qweight/qzeros/scales/g_idx of every quantized projection are decoded
   with AutoGPTQ's own unpacking (gptq_fixture.py's numpy transcription of it, not qalc's code),
   W = scales[g_idx] * (codes - (qzeros + 1)), put into a float LlamaForCausalLM built from the
   export's config.json (its quantization_config dropped) with the export's other tensors as they
   are: Hugging Face names and rotary order must then compute qalc's model.
2. If a GPTQ kernel library (gptqmodel, auto_gptq) is installed, transformers'
   from_pretrained(DIR) is compared too; otherwise the script says it is missing.
Exits 1 if a comparison that ran differs by more than TOLERANCE.
"""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gptq_fixture import unpack  # noqa: E402  AutoGPTQ's unpacking, transcribed

TOLERANCE = 1e-3


def logits_of(model, tokens):
    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0].double()


def decoded_state(folder: Path, quant: dict):
    bits = quant["bits"]
    zero_offset = {"gptq": 1, "gptq_v2": 0}[quant.get("checkpoint_format", "gptq")]
    tensors = load_file(folder / "model.safetensors")
    state = {}
    for name, tensor in tensors.items():
        if name.endswith((".qzeros", ".scales", ".g_idx")):
            continue
        if not name.endswith(".qweight"):
            state[name] = tensor.float()
            continue
        prefix = name[: -len(".qweight")]
        qweight = tensors[name].numpy()
        qzeros = tensors[f"{prefix}.qzeros"].numpy()
        scales = tensors[f"{prefix}.scales"].float().numpy()
        g_idx = tensors[f"{prefix}.g_idx"].numpy().astype(np.int64)
        k, n = g_idx.shape[0], qweight.shape[1]
        codes = unpack(qweight, bits, k).astype(np.float32)
        zeros = unpack(qzeros.T.copy(), bits, n).T.astype(np.float32) + zero_offset
        weight = scales[g_idx] * (codes - zeros[g_idx])  # [K, N]
        state[f"{prefix}.weight"] = torch.from_numpy(weight.T.copy())
    return state


def main():
    folder = Path(sys.argv[1])
    reference = json.loads((folder / "qalc-logits.json").read_text())
    tokens, qalc = reference["tokens"], torch.tensor(reference["logits"], dtype=torch.float64)
    config = json.loads((folder / "config.json").read_text())
    quant = config.pop("quantization_config")
    print(f"torch {torch.__version__}; {folder}: {quant['bits']}-bit, group {quant['group_size']}, {quant.get('checkpoint_format', 'gptq')}")
    ok = True

    model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in config.items() if k not in ("architectures", "model_type", "torch_dtype", "dtype")})).float().eval()
    missing, unexpected = model.load_state_dict(decoded_state(folder, quant), strict=False)
    missing = [m for m in missing if not (m == "lm_head.weight" and config.get("tie_word_embeddings"))]
    if missing or unexpected:
        raise SystemExit(f"the export's tensors do not fill a LlamaForCausalLM: missing {missing[:4]}, unexpected {unexpected[:4]}")
    if config.get("tie_word_embeddings"):
        model.tie_weights()
    difference = (logits_of(model, tokens) - qalc).abs().max().item()
    agree = bool((logits_of(model, tokens).argmax(-1) == qalc.argmax(-1)).all())
    print(f"decoded with AutoGPTQ's unpacking, run by transformers' LlamaForCausalLM: max |transformers - qalc| = {difference:.3e}; argmax agrees at every position: {agree}")
    ok &= difference <= TOLERANCE and agree

    libraries = [m for m in ("gptqmodel", "auto_gptq", "optimum") if importlib.util.find_spec(m)]
    if not any(m in libraries for m in ("gptqmodel", "auto_gptq")):
        print(f"transformers' own GPTQ loading: not run, no GPTQ kernel library here (found: {libraries or 'none'})")
    else:
        from transformers import AutoModelForCausalLM
        loaded = AutoModelForCausalLM.from_pretrained(folder, device_map="cuda" if torch.cuda.is_available() else "cpu").eval()
        with torch.no_grad():
            theirs = loaded(torch.tensor([tokens], device=loaded.device)).logits[0].double().cpu()
        difference = (theirs - qalc).abs().max().item()
        print(f"transformers.from_pretrained with {libraries}: max |transformers - qalc| = {difference:.3e} (fp16 kernels)")
        ok &= difference <= 5e-2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
