#!/usr/bin/env python3
"""Hugging Face's LlamaForCausalLM forward, written from transformers' modeling_llama.py in numpy
float64, for a model directory: logits of every position of a prompt, as JSON on stdout.

    python3 test/model/hf_llama_numpy.py MODEL_DIR TOKEN_ID...

An independent reference for qalc's reading of config.json: it reads the safetensors as stored
(Hugging Face's rotary order, no conversion) and applies RoPE as transformers does — rotate_half
over the two halves of each head, inv_freq = 1 / rope_theta^(2i/head_dim) — with the config's
rope_theta (top level or rope_parameters) and rms_norm_eps. Only F32 tensors (the fixture's).
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np


def read_safetensors(path: Path):
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        assert entry["dtype"] == "F32", f"{name}: {entry['dtype']}"
        start, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(data[8 + length + start : 8 + length + end], dtype="<f4").reshape(entry["shape"]).astype(np.float64)
    return tensors


def main(folder: Path, ids):
    config = json.loads((folder / "config.json").read_text())
    w = read_safetensors(folder / "model.safetensors")
    theta = config.get("rope_theta") or config.get("rope_parameters", {}).get("rope_theta", 10000.0)
    eps = config.get("rms_norm_eps", 1e-5)
    dim, heads = config["hidden_size"], config["num_attention_heads"]
    kv_heads, head_dim = config.get("num_key_value_heads", heads), dim // heads
    T = len(ids)

    def rms_norm(x, weight):
        return weight * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))

    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)
    angles = np.outer(np.arange(T), inv_freq)
    cos, sin = np.cos(np.concatenate([angles, angles], -1)), np.sin(np.concatenate([angles, angles], -1))

    def rotate_half(x):
        half = x.shape[-1] // 2
        return np.concatenate([-x[..., half:], x[..., :half]], -1)

    x = w["model.embed_tokens.weight"][ids]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(config["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(T, heads, head_dim).transpose(1, 0, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(T, kv_heads, head_dim).transpose(1, 0, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(T, kv_heads, head_dim).transpose(1, 0, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = np.repeat(k, heads // kv_heads, 0), np.repeat(v, heads // kv_heads, 0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(head_dim) + mask
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        x = x + (probs @ v).transpose(1, 0, 2).reshape(T, dim) @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"])
        gate, up = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    json.dump((rms_norm(x, w["model.norm.weight"]) @ head.T).tolist(), sys.stdout)


if __name__ == "__main__":
    main(Path(sys.argv[1]), [int(t) for t in sys.argv[2:]])
