#!/usr/bin/env python3
"""qalc's CUDA attention kernels against a float64 reference, then timed against torch's flash SDPA.

For every kernel in attention-kernels.json (written by emit-attention-kernels.ts: the
ModelOpKernel descriptions, their .cu and sm_90a fatbins) and ragged seqLens 1, 5, 37, 130,
300, 2048 at batch 1..3: random q, k, v, dOut (float32, or bf16 for the kernels whose constant
IO_BF16 is 1: those read q, k, v, dOut and write out in bf16), the forward (out, lse), then the
backward (delta, dq, dkdv) into dq, dk, dv prefilled with random values (backwards accumulate:
the check subtracts the prefill). Reference in float64 from the same float32 values:
softmax(q k^T * scale + causal mask) v, lse = logsumexp, and torch autograd for dq, dk, dv;
query head h reads kv head h // (heads / kvHeads) (src/runtime/typescript/attention.ts).

Error: max |got - ref| / max |ref| over the whole output (max-norm relative; absolute where the
reference is exactly 0: at seqLen 1 the softmax has one entry and dq, dk vanish). Tolerance 1e-2:
the kernels round q, k, v, dOut (and p, ds as mma operands) to bf16, 2^-9 relative each, and
accumulate in float32; the errors measured are a few 1e-3. The backward must also be
deterministic: a second run gives the same bits.

Last, every kernel of the LLaMA-7B shape (heads 32, kv 32, headSize 128, seqLen 2048, batch 1;
tile variants included, and those of further --kernels folders, e.g. an older commit's): forward
and backward timed (CUDA events, median of REPEATS) against torch.nn.functional.
scaled_dot_product_attention with the flash backend in bf16, same shape, in the same run.
Writes OUT/attention.md (the tables) and prints them; exit 1 on any failure.
--profile KERNEL runs KERNEL's forward and backward once at the LLaMA-7B shape, nothing else
(for ncu).

    python3 check_attention.py --kernels DIR [--kernels DIR2 ...] --out OUT [--profile KERNEL]
"""
import argparse
import json
import math
import os
import sys
import time

import torch

from cuda_driver import Module

SEQ_LENS = [1, 5, 37, 130, 300, 2048]
# QUICK=1 (for compute-sanitizer): the two head-size-8 and -128 GQA kernels at three seqLens, no timing.
QUICK = os.environ.get("QUICK") == "1"
if QUICK:
    SEQ_LENS = [1, 37, 130]
TOLERANCE = 1e-2
REPEATS = int(os.environ.get("REPEATS", "20"))


def grid_of(kernel, entry, batch, seq_len):
    """The grid the runtime computes (attentionGrid); each template's header documents it. Kernels
    before the pipelined tiles (one BLOCK_Q, BLOCK_K for all) still run, to time side by side."""
    c = kernel["constants"]
    rows = lambda name, old: c[name] if name in c else c[old]
    if entry == "forward":
        return (math.ceil(seq_len / rows("FWD_BLOCK_Q", "BLOCK_Q")), c["HEADS"], batch)
    if entry == "backward_dq":
        return (math.ceil(seq_len / rows("DQ_BLOCK_Q", "BLOCK_Q")), c["HEADS"], batch)
    if entry == "backward_dkdv":
        return (math.ceil(seq_len / rows("DKDV_BLOCK_K", "BLOCK_K")), c["KV_HEADS"], batch)
    if entry == "backward_delta":
        return (math.ceil(batch * seq_len * c["HEADS"] / c["DELTA_WARPS"]), 1, 1)
    raise ValueError(entry)


class Attention:
    """One kernel's entry points, launched as the runtime would: by name, in launch order."""

    def __init__(self, kernel, directory):
        self.kernel = kernel
        with open(os.path.join(directory, kernel["fatbin"]), "rb") as f:
            self.module = Module(f.read())
        self.entries = {e["name"]: (e, self.module.function(e["symbol"])) for e in kernel["entryPoints"]}

    def launch(self, name, batch, seq_len, tensors):
        entry, fn = self.entries[name]
        args = [tensors[p["name"]] if p["type"] == "pointer" else {"batch": batch, "seqLen": seq_len}[p["name"]] for p in entry["parameters"]]
        fn.launch(grid_of(self.kernel, name, batch, seq_len), entry["block"], entry["sharedBytes"], args)

    def forward(self, batch, seq_len, t):
        self.launch("forward", batch, seq_len, t)

    def backward(self, batch, seq_len, t):
        self.launch("backward_delta", batch, seq_len, t)
        self.launch("backward_dq", batch, seq_len, t)
        self.launch("backward_dkdv", batch, seq_len, t)


def reference(q, k, v, d_out, batch, seq_len, heads, kv_heads, head_size):
    """float64 out, lse [B, H, T], dq, dk, dv in the kernels' layouts."""
    q = q.double().view(batch, seq_len, heads, head_size).transpose(1, 2).requires_grad_()
    k = k.double().view(batch, seq_len, kv_heads, head_size).transpose(1, 2).requires_grad_()
    v = v.double().view(batch, seq_len, kv_heads, head_size).transpose(1, 2).requires_grad_()
    group = heads // kv_heads
    kk = k.repeat_interleave(group, dim=1)  # query head h reads kv head h // group
    vv = v.repeat_interleave(group, dim=1)
    scores = q @ kk.transpose(-1, -2) / math.sqrt(head_size)
    mask = torch.ones(seq_len, seq_len, dtype=torch.bool, device=q.device).triu(1)
    scores = scores.masked_fill(mask, -math.inf)
    lse = torch.logsumexp(scores, dim=-1)
    out = torch.softmax(scores, dim=-1) @ vv
    out.backward(d_out.double().view(batch, seq_len, heads, head_size).transpose(1, 2))
    flat = lambda x, h: x.detach().transpose(1, 2).reshape(batch * seq_len, h * head_size)
    return {"out": flat(out, heads), "lse": lse.detach(), "dq": flat(q.grad, heads), "dk": flat(k.grad, kv_heads), "dv": flat(v.grad, kv_heads)}


def max_norm_error(got, ref):
    scale = ref.abs().max().item()
    return (got.double() - ref).abs().max().item() / (scale if scale > 0 else 1.0)


def io_dtype(kernel):
    """The element type of q, k, v, dOut and out (dq, dk, dv, lse and delta are float32 always)."""
    return torch.bfloat16 if kernel["constants"].get("IO_BF16", 0) == 1 else torch.float32


def case_generator(kernel, batch, seq_len):
    """Inputs drawn from a seed of the case alone (shape, io type, batch, seqLen): kernels of the same
    shape in different folders (this commit's, a base's) are checked on the same values."""
    c = kernel["constants"]
    key = (c["HEADS"], c["KV_HEADS"], c["HEAD_SIZE"], c.get("IO_BF16", 0), batch, seq_len)
    seed = 1234
    for part in key:
        seed = (seed * 1000003 + part) % (2 ** 61 - 1)
    return torch.Generator(device="cuda").manual_seed(seed)


def check_case(att, batch, seq_len, generator):
    c = att.kernel["constants"]
    heads, kv_heads, hs = c["HEADS"], c["KV_HEADS"], c["HEAD_SIZE"]
    rows = batch * seq_len
    dev = "cuda"
    io = io_dtype(att.kernel)
    randn = lambda *shape: torch.randn(*shape, generator=generator, device=dev, dtype=torch.float32)
    rows_in = lambda *shape: randn(*shape).to(io)
    t = {
        "q": rows_in(rows, heads * hs), "k": rows_in(rows, kv_heads * hs), "v": rows_in(rows, kv_heads * hs), "dOut": rows_in(rows, heads * hs),
        "out": torch.full((rows, heads * hs), float("nan"), device=dev, dtype=io), "lse": torch.full((batch, heads, seq_len), float("nan"), device=dev),
        "delta": torch.full((batch, heads, seq_len), float("nan"), device=dev),
    }
    prefill = {"dq": randn(rows, heads * hs), "dk": randn(rows, kv_heads * hs), "dv": randn(rows, kv_heads * hs)}
    for name, x in prefill.items():
        t[name] = x.clone()
    att.forward(batch, seq_len, t)
    att.backward(batch, seq_len, t)
    torch.cuda.synchronize()
    got = {"out": t["out"], "lse": t["lse"], **{n: t[n] - prefill[n] for n in prefill}}
    # Determinism: the same backward again from the same prefill gives the same bits.
    again = {n: prefill[n].clone() for n in prefill}
    att.backward(batch, seq_len, {**t, **again})
    torch.cuda.synchronize()
    deterministic = all(torch.equal(again[n], t[n]) for n in prefill)
    ref = reference(t["q"], t["k"], t["v"], t["dOut"], batch, seq_len, heads, kv_heads, hs)
    errors = {n: max_norm_error(got[n], ref[n]) for n in ref}
    finite = all(torch.isfinite(got[n]).all().item() for n in got)
    return errors, deterministic, finite


def time_cuda(fn, repeats=REPEATS):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def big_tensors(att, batch, seq_len):
    c = att.kernel["constants"]
    heads, kv_heads, hs = c["HEADS"], c["KV_HEADS"], c["HEAD_SIZE"]
    rows = batch * seq_len
    g = torch.Generator(device="cuda").manual_seed(7)
    io = io_dtype(att.kernel)
    randn = lambda *shape: torch.randn(*shape, generator=g, device="cuda")
    rows_in = lambda *shape: randn(*shape).to(io)
    return {"q": rows_in(rows, heads * hs), "k": rows_in(rows, kv_heads * hs), "v": rows_in(rows, kv_heads * hs), "dOut": rows_in(rows, heads * hs),
         "out": torch.empty(rows, heads * hs, device="cuda", dtype=io), "lse": torch.empty(batch, heads, seq_len, device="cuda"),
         "delta": torch.empty(batch, heads, seq_len, device="cuda"),
         "dq": torch.zeros(rows, heads * hs, device="cuda"), "dk": torch.zeros(rows, kv_heads * hs, device="cuda"), "dv": torch.zeros(rows, kv_heads * hs, device="cuda")}


def timing(att, batch=1, seq_len=2048):
    t = big_tensors(att, batch, seq_len)
    ours_fwd = time_cuda(lambda: att.forward(batch, seq_len, t))
    ours_bwd = time_cuda(lambda: att.backward(batch, seq_len, t))
    ours_parts = {name: time_cuda(lambda name=name: att.launch(name, batch, seq_len, t)) for name in ("backward_delta", "backward_dq", "backward_dkdv")}
    c = att.kernel["constants"]
    flops = 4 * batch * c["HEADS"] * seq_len * seq_len * c["HEAD_SIZE"] / 2
    return {"ours_fwd": ours_fwd, "ours_bwd": ours_bwd, "flops": flops, "parts": ours_parts}


def torch_timing(heads=32, kv_heads=32, hs=128, batch=1, seq_len=2048):
    from torch.nn.attention import SDPBackend, sdpa_kernel
    shape = lambda h: (batch, h, seq_len, hs)
    q = torch.randn(shape(heads), device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(shape(kv_heads), device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(shape(kv_heads), device="cuda", dtype=torch.bfloat16, requires_grad=True)
    d = torch.randn(shape(heads), device="cuda", dtype=torch.bfloat16)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        torch_fwd = time_cuda(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
        o = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch_bwd = time_cuda(lambda: torch.autograd.grad(o, (q, k, v), d, retain_graph=True))
    return {"torch_fwd": torch_fwd, "torch_bwd": torch_bwd}


def load(directories):
    kernels = []
    for directory in directories:
        with open(os.path.join(directory, "attention-kernels.json")) as f:
            kernels += [(k, directory) for k in json.load(f)]
    return kernels


def is_7b(kernel):
    c = kernel["constants"]
    return (c["HEADS"], c["KV_HEADS"], c["HEAD_SIZE"]) == (32, 32, 128)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernels", required=True, action="append")
    parser.add_argument("--out", required=True)
    parser.add_argument("--profile")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    kernels = load(args.kernels)
    if args.profile:
        kernel, directory = next((k, d) for k, d in kernels if k["kernel"] == args.profile)
        att = Attention(kernel, directory)
        t = big_tensors(att, 1, 2048)
        att.forward(1, 2048, t)
        att.backward(1, 2048, t)
        torch.cuda.synchronize()
        return 0
    lines = [f"# qalc CUDA attention on {torch.cuda.get_device_name()} (torch {torch.__version__})", "",
             f"Max-norm relative error against float64; tolerance {TOLERANCE}; dq, dk, dv prefilled (+= checked); backward run twice (bitwise).", "",
             "| kernel | batch | seqLen | out | lse | dq | dk | dv | deterministic | ok |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    failures = 0
    attentions = []
    started = time.time()
    if QUICK:
        kernels = [(k, d) for k, d in kernels if k["kernel"] in ("attention_h8_kv2_d8_f32", "attention_h8_kv2_d128_f32", "attention_h8_kv2_d8_bf16", "attention_h8_kv2_d128_bf16")]
    for index, (kernel, directory) in enumerate(kernels):
        att = Attention(kernel, directory)
        attentions.append((att, directory))
        for j, seq_len in enumerate(SEQ_LENS):
            c = kernel["constants"]
            batch = 1 + (c["HEADS"] + c["KV_HEADS"] + c["HEAD_SIZE"] // 8 + j) % 3  # of the shape, not the folder
            if kernel["constants"]["HEADS"] >= 32 and seq_len == 2048:
                batch = 1
            try:
                errors, deterministic, finite = check_case(att, batch, seq_len, case_generator(kernel, batch, seq_len))
                ok = finite and deterministic and all(e <= TOLERANCE for e in errors.values())
                cells = " | ".join(f"{errors[n]:.2e}" for n in ("out", "lse", "dq", "dk", "dv"))
            except Exception as error:  # a launch failure is a failed case, the rest still run
                ok, deterministic, cells = False, False, f"error: {error} | | | |"
            failures += not ok
            line = f"| {kernel['kernel']} ({os.path.basename(os.path.normpath(directory))}) | {batch} | {seq_len} | {cells} | {'yes' if deterministic else 'NO'} | {'ok' if ok else 'FAIL'} |"
            lines.append(line)
            print(line, flush=True)
    lines += ["", f"checks took {time.time() - started:.1f} s", ""]
    big = [(att, directory) for att, directory in attentions if is_7b(att.kernel)]
    if big and not QUICK:
        try:
            ref = torch_timing()
            tf = lambda flops, ms: flops / ms / 1e9
            lines += ["## LLaMA-7B shape: heads 32, kv 32, headSize 128, seqLen 2048, batch 1 (median of %d, CUDA events)" % REPEATS, "",
                      f"torch SDPA flash (bf16): forward {ref['torch_fwd']:.3f} ms, backward {ref['torch_bwd']:.3f} ms (same run).", "",
                      "| kernel (folder) | forward ms | TFLOP/s | / torch | backward ms | TFLOP/s | / torch | delta | dq | dkdv |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
            for att, directory in big:
                r = timing(att)
                p = r["parts"]
                lines.append(f"| {att.kernel['kernel']} ({os.path.basename(os.path.normpath(directory))}) | {r['ours_fwd']:.3f} | {tf(r['flops'], r['ours_fwd']):.0f} | {r['ours_fwd'] / ref['torch_fwd']:.2f} | "
                             f"{r['ours_bwd']:.3f} | {tf(2.5 * r['flops'], r['ours_bwd']):.0f} | {r['ours_bwd'] / ref['torch_bwd']:.2f} | "
                             f"{p['backward_delta']:.3f} | {p['backward_dq']:.3f} | {p['backward_dkdv']:.3f} |")
                print(lines[-1], flush=True)
            lines += ["", "qalc: kernels named _f32 read and write float32, _bf16 bf16 (dq, dk, dv float32 +=); bf16 mma.sync. FLOPs as flash-attention counts them: forward 2 B H T^2 D (causal), backward 2.5x that."]
        except Exception as error:  # the correctness table still comes back
            failures += 1
            lines += [f"timing failed: {error}"]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "attention.md"), "w") as f:
        f.write(text)
    print(text)
    print(f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
