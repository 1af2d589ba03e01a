"""The PyTorch anchors of the 7B-shaped fine-tune (issue 11) and the bf16 GEMM ceiling, on one GPU.

    python3 reference.py gemm                      # an 8192^3 bf16 matmul: the measured ceiling
    python3 reference.py peft-lora    [options]    # transformers (sdpa) + PEFT LoRA r64, bf16 base
    python3 reference.py qalora-eager [options]    # each projection a QA-LoRA layer (QALORA.md)

Each prints one JSON object on its last stdout line. The model is LlamaForCausalLM with
LLaMA-2-7B's config (or --layers N of its blocks), random weights (transformers' own
initialisation, normal(0, 0.02), run on the GPU), bf16, sequence --seq (2048), batch 1, a random
token batch, AdamW on the trainable parameters with the gradient clipped at 0.3, --warmup steps
untimed then --steps timed (torch.cuda.synchronize around them, and CUDA events per step).
Gradient checkpointing is off, use_cache is off, the model is in train mode (dropout 0.05 on the
adapters' inputs, as examples/llama2-7b-int4-g32.qal asks). Peak memory is
torch.cuda.max_memory_allocated after reset_peak_memory_stats, taken after the model is built,
so it covers the weights, the optimizer state and every step's activations.

qalora-eager: every q/k/v/o/gate/up/down nn.Linear becomes QaLoraLinear: its random bf16 weight
quantized RTN 4-bit in groups of 32 consecutive inputs, asymmetric (QALORA.md's min-max with 0 in
the range), codes packed two a byte, scales and zeros bf16; the base product runs through
DequantLinear, which dequantizes Ŵ to bf16 in the forward and again in the backward for dx, and
saves only the codes (no Ŵ kept between them); the adapter pools x over each group of 32 (mean),
applies dropout, then A [K/32, r] and B [r, N] (float32, as PEFT keeps LoRA's), scaled by
alpha / r. A is kaiming-uniform, B zero.
"""

import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def llama2_7b_config(layers):
    from transformers import LlamaConfig

    config = LlamaConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=layers,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
        rms_norm_eps=1e-5, tie_word_embeddings=False, hidden_act="silu", use_cache=False,
        initializer_range=0.02, attn_implementation="sdpa",
    )
    if getattr(config, "_attn_implementation", None) != "sdpa":
        config._attn_implementation = "sdpa"  # releases that ignore the keyword read this
    return config


def build_base(layers):
    """LlamaForCausalLM in bf16, built and initialised on the GPU (no float32 copy anywhere)."""
    from transformers import LlamaForCausalLM

    config = llama2_7b_config(layers)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    # Built under the bf16 default dtype, so every parameter is bf16 already; RoPE's inv_freq stays
    # the float32 transformers computes it in (a model.to(bf16) would round it).
    for p in model.parameters():
        if p.dtype != torch.bfloat16:
            p.data = p.data.to(torch.bfloat16)
    model.config.use_cache = False
    return model


# ---- QA-LoRA (../shared/reference/QALORA.md) ----------------------------------------------------


def quantize_rtn(weight, bits, group):
    """weight [N, K] (nn.Linear's [out, in]) -> packed codes [N, K/2] uint8, scales, zeros [N, K/g] bf16.

    QALORA.md: per group k of g consecutive inputs and output o, xmin = min(0, min W),
    xmax = max(0, max W) (both 0: -1, +1), s = (xmax - xmin) / (2^b - 1), z = round(-xmin / s),
    q = clamp(round(W / s) + z, 0, 2^b - 1).
    """
    n, k = weight.shape
    w = weight.float().view(n, k // group, group)
    xmin = w.amin(dim=-1).clamp(max=0)
    xmax = w.amax(dim=-1).clamp(min=0)
    both_zero = (xmin == 0) & (xmax == 0)
    xmin = torch.where(both_zero, torch.full_like(xmin, -1), xmin)
    xmax = torch.where(both_zero, torch.full_like(xmax, 1), xmax)
    levels = 2 ** bits - 1
    scale = (xmax - xmin) / levels
    zero = torch.round(-xmin / scale)
    q = torch.clamp(torch.round(w / scale[..., None]) + zero[..., None], 0, levels).to(torch.uint8).view(n, k)
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).contiguous()  # input 2j in the low nibble, 2j+1 in the high
    return packed, scale.to(torch.bfloat16), zero.to(torch.bfloat16)


def dequantize(packed, scale, zero, group):
    """Ŵ [N, K] bf16 = s * (q - z), from the packed codes."""
    n, half = packed.shape
    q = torch.stack((packed & 0xF, packed >> 4), dim=-1).view(n, half * 2)
    return ((q.view(n, -1, group).to(torch.bfloat16) - zero[..., None]) * scale[..., None]).view(n, half * 2)


class DequantLinear(torch.autograd.Function):
    """y = x·Ŵᵀ with Ŵ dequantized in the forward and again in the backward; only the codes are saved."""

    @staticmethod
    def forward(ctx, x, packed, scale, zero, group):
        ctx.save_for_backward(packed, scale, zero)
        ctx.group = group
        return F.linear(x, dequantize(packed, scale, zero, group))

    @staticmethod
    def backward(ctx, dy):
        packed, scale, zero = ctx.saved_tensors
        dx = dy @ dequantize(packed, scale, zero, ctx.group) if ctx.needs_input_grad[0] else None
        return dx, None, None, None, None


class QaLoraLinear(nn.Module):
    """QALORA.md's layer: y = x·Ŵ + σ · drop(pool(x))·A·B, σ = alpha / r, W frozen and quantized."""

    def __init__(self, linear, bits, group, rank, alpha, dropout):
        super().__init__()
        n, k = linear.weight.shape
        if k % group != 0:
            raise ValueError(f"in-features {k} is not a multiple of the group {group}")
        packed, scale, zero = quantize_rtn(linear.weight.data, bits, group)
        self.register_buffer("packed", packed)
        self.register_buffer("scale", scale)
        self.register_buffer("zero", zero)
        self.group, self.sigma = group, alpha / rank
        groups = k // group
        self.A = nn.Parameter(torch.empty(groups, rank, device=packed.device, dtype=torch.float32))
        nn.init.uniform_(self.A, -1 / math.sqrt(groups), 1 / math.sqrt(groups))  # kaiming_uniform(a=√5), fan-in L
        self.B = nn.Parameter(torch.zeros(rank, n, device=packed.device, dtype=torch.float32))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        base = DequantLinear.apply(x, self.packed, self.scale, self.zero, self.group)
        pooled = x.unflatten(-1, (-1, self.group)).mean(-1).float()  # u = pool(x), [.., K/g] (fp32 accumulation)
        v = self.dropout(pooled) @ self.A
        return base + (self.sigma * (v @ self.B)).to(base.dtype)


def check_layer(linear, layer, group, tokens=64):
    """The layer against its definition, on the weight it replaced: every |Ŵ − W| within half a
    step (plus bf16's rounding of s and Ŵ), and the forward, dx, dA and dB against float32
    autograd through a materialised Ŵ, with B made non-zero so the adapter counts."""
    w = linear.weight.data.float()
    n, k = w.shape
    steps = dequantize(layer.packed, layer.scale, layer.zero, group).float() - w
    step_error = (steps.view(n, -1, group).abs() / layer.scale.float()[..., None]).max().item()
    with torch.no_grad():
        layer.B.normal_(0, 0.02)
    x = torch.randn(tokens, k, device=w.device, dtype=torch.bfloat16, requires_grad=True)
    dy = torch.randn(tokens, n, device=w.device, dtype=torch.bfloat16)
    layer.eval()
    y = layer(x)
    y.backward(dy)
    got = [y.float(), x.grad.float(), layer.A.grad.clone(), layer.B.grad.clone()]
    x.grad = layer.A.grad = layer.B.grad = None
    x32 = x.detach().float().requires_grad_(True)
    a32, b32 = layer.A.detach().clone().requires_grad_(True), layer.B.detach().clone().requires_grad_(True)
    w_hat = dequantize(layer.packed, layer.scale, layer.zero, group).float()
    y32 = x32 @ w_hat.T + layer.sigma * (x32.unflatten(-1, (-1, group)).mean(-1) @ a32 @ b32)
    y32.backward(dy.float())
    want = [y32.detach(), x32.grad, a32.grad, b32.grad]
    errors = [((g - e).norm() / e.norm().clamp_min(1e-30)).item() for g, e in zip(got, want)]
    with torch.no_grad():
        layer.B.zero_()
    layer.train()
    return {"max_error_in_steps": step_error, "relative_error_y_dx_dA_dB": errors,
            "ok": step_error <= 0.65 and all(e < 2e-2 for e in errors)}


def to_qalora(model, bits=4, group=32, rank=64, alpha=16, dropout=0.05):
    """Every projection a QaLoraLinear; returns the model and the first layer's check."""
    for p in model.parameters():
        p.requires_grad_(False)
    check = None
    for layer in model.model.layers:
        for owner in (layer.self_attn, layer.mlp):
            for name in PROJECTIONS:
                linear = getattr(owner, name, None)
                if linear is not None:
                    replacement = QaLoraLinear(linear, bits, group, rank, alpha, dropout)
                    if check is None:
                        check = check_layer(linear, replacement, group)
                    setattr(owner, name, replacement)
                    del linear
    torch.cuda.empty_cache()
    return model, check


def to_peft_lora(model, rank=64, alpha=16, dropout=0.05):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=PROJECTIONS, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, config)


# ---- timing ------------------------------------------------------------------------------------

LINEAR_KERNELS = ("gemm", "nvjet", "xmma", "cutlass", "cublas", "matmul", "gemv", "splitk", "sm90_")
ATTENTION_KERNELS = ("flash", "fmha", "attention", "attn", "sdpa")


def kernel_class(name):
    lower = name.lower()
    if any(word in lower for word in ATTENTION_KERNELS):
        return "attention"
    if any(word in lower for word in LINEAR_KERNELS):
        return "gemm"
    return "other"


def profile_step(step):
    """GPU kernel time of one step by class: gemm (every matmul kernel), attention, other."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    totals = {"gemm": 0.0, "attention": 0.0, "other": 0.0}
    for event in prof.key_averages():
        if str(getattr(event, "device_type", "")).endswith("CUDA"):
            us = getattr(event, "self_device_time_total", None)
            if us is None:
                us = getattr(event, "self_cuda_time_total", 0.0)
            totals[kernel_class(event.key)] += us / 1000.0
    return {k: round(v, 3) for k, v in totals.items()}


def train_bench(mode, layers, seq, batch, warmup, steps, lr):
    torch.manual_seed(0)
    built = time.perf_counter()
    model = build_base(layers)
    check = None
    if mode == "peft-lora":
        model = to_peft_lora(model)
    else:
        model, check = to_qalora(model)
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    trainable_count = sum(p.numel() for p in trainable)
    try:
        optimizer = torch.optim.AdamW(trainable, lr=lr, fused=True)
    except (TypeError, RuntimeError):
        optimizer = torch.optim.AdamW(trainable, lr=lr)
    torch.cuda.synchronize()
    build_s = time.perf_counter() - built
    tokens = torch.randint(0, 32000, (batch, seq), device="cuda")
    losses = []

    def step():
        out = model(input_ids=tokens, labels=tokens, use_cache=False)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 0.3)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return out.loss

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        losses.append(float(step()))
    torch.cuda.synchronize()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(steps)]
    started = time.perf_counter()
    for begin, end in events:
        begin.record()
        loss = step()
        end.record()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    losses.append(float(loss))
    step_ms = sorted(begin.elapsed_time(end) for begin, end in events)
    result = {
        "mode": mode, "layers": layers, "seq": seq, "batch": batch, "warmup_steps": warmup, "timed_steps": steps,
        "tokens_per_s": steps * seq * batch / seconds,
        "step_ms_median": step_ms[len(step_ms) // 2], "step_ms_min": step_ms[0],
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(),
        "peak_reserved_bytes": torch.cuda.max_memory_reserved(),
        "trainable_parameters": trainable_count,
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "build_s": build_s, "first_loss": losses[0], "last_loss": losses[-1],
        "finite": all(math.isfinite(x) for x in losses),
    }
    if check is not None:
        result["layer_check"] = check
    try:
        result["step_ms_by_class"] = profile_step(step)
    except Exception as error:  # the split is a bonus: the timing above stands without it
        result["step_ms_by_class_error"] = repr(error)
    return result


def gemm_ceiling(n=8192, iterations=50):
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    for _ in range(iterations):
        a @ b
    end.record()
    torch.cuda.synchronize()
    ms = begin.elapsed_time(end) / iterations
    return {"mode": "gemm", "n": n, "ms": ms, "tflops": 2 * n ** 3 / (ms / 1000) / 1e12}


def versions():
    found = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(0)}
    for name in ("transformers", "peft"):
        try:
            found[name] = __import__(name).__version__
        except Exception as error:
            found[name] = f"unavailable: {error!r}"
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["gemm", "peft-lora", "qalora-eager"])
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--lr", type=float, default=2e-5)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    result = gemm_ceiling() if args.mode == "gemm" else train_bench(args.mode, args.layers, args.seq, args.batch, args.warmup, args.steps, args.lr)
    result["versions"] = versions()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
