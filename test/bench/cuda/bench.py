#!/usr/bin/env python3
"""qalc's CUDA kernels against PyTorch and the H200's ceilings, in one run (issue 10).

For every case of build/kernels/kernels.json (emit-bench-kernels.ts) and every T of its role:
1. checks the kernel against the float64 reference of check_kernels.py (QALORA.md), on fresh
   random inputs, outputs poisoned with NaN first;
2. times it (CUDA events around back-to-back launches, the read-only operands rotated among
   enough copies to exceed the L2 three times; median of REPEATS) beside, in the same run:
   cuBLAS bf16 on the unquantized weight, PyTorch eager QA-LoRA from the packed codes
   (QALORA.md), torch.compile of that function, dequantize-once-then-cuBLAS (the weight held in
   bf16, the adapter in eager), and for T = 4096 forward + backward against a bf16 LoRA on cuBLAS;
3. the ceilings: device-to-device copy (bytes read + written) and an 8192^3 bf16 GEMM, and the
   floors of every case (bytes of its bindings over the copy rate, 2TKN over the GEMM rate).
Writes OUT/bench.json and OUT/bench.md; prints the short table last.

    python3 bench.py --build build --out OUT [--quick] [--no-compile] [--profile]
"""
import argparse
import ctypes
import json
import math
import os
import re
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "backends", "cuda", "h200"))
import check_kernels  # noqa: E402  (the harness's float64 reference, from QALORA.md)

TOKENS = {"decode": [1, 16], "forward": [64, 512, 4096], "backward_data": [512, 4096], "adapter_grad": [512, 4096], "dequantize": [0]}
QUICK_TOKENS = {"decode": [1, 16], "forward": [512, 4096], "backward_data": [4096], "adapter_grad": [4096], "dequantize": [0]}
DTYPE = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32, "u32": torch.int32}
L2_BYTES = 60 * 2**20
ADAPTER_SCALE = 0.25  # alpha / r of the paper's setting (16 / 64)


def cuda_time(calls, repeats=10, min_ms=2.0):
    """Median ms of one call: events around n back-to-back calls (cycling through `calls`)."""
    for c in calls:
        c()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    calls[0]()
    end.record()
    end.synchronize()
    one = max(start.elapsed_time(end), 1e-3)
    n = max(len(calls), min(2000, int(math.ceil(min_ms / one))))
    times = []
    for _ in range(repeats):
        start.record()
        for i in range(n):
            calls[i % len(calls)]()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / n)
    times.sort()
    return times[len(times) // 2]


def ceilings():
    n = 2**30  # 1 GiB each way
    a = torch.empty(n, dtype=torch.uint8, device="cuda").random_()
    b = torch.empty_like(a)
    copy_ms = cuda_time([lambda: b.copy_(a)], repeats=10)
    del a, b
    m = 8192
    x = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
    y = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
    gemm_ms = cuda_time([lambda: x @ y], repeats=10)
    return {"copy_bytes_per_s": 2 * n / (copy_ms * 1e-3), "gemm_flops_per_s": 2 * m**3 / (gemm_ms * 1e-3), "copy_ms": copy_ms, "gemm_ms": gemm_ms}


class Library:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)

    def launcher(self, symbol):
        f = getattr(self.lib, symbol)
        f.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint, ctypes.c_float, ctypes.c_void_p]
        f.restype = ctypes.c_int
        return f


def count(binding, tokens):
    return binding["perToken"] * tokens + binding["constant"]


def flat_binding(binding, tokens, inputs):
    """The device tensor of one binding from the generated inputs (parts placed at their offsets); NaN / 0xFF where none."""
    n = count(binding, tokens)
    dtype = DTYPE[binding["elementType"]]
    t = torch.empty(max(n, 1), dtype=dtype, device="cuda")
    t.view(torch.uint8).fill_(0xFF)
    names = [p["name"] for p in binding["parts"]] or [binding["name"]]
    offsets = [p["offset"] for p in binding["parts"]] or [0]
    for name, offset in zip(names, offsets):
        if name in inputs:
            values = inputs[name].reshape(-1)
            if dtype == torch.int32:
                t[offset:offset + values.numel()] = values.to(torch.int64).to("cuda").to(torch.int32)  # wraps to the u32 bit pattern
            else:
                t[offset:offset + values.numel()] = values.to("cuda").to(dtype)
    return t


def as_float64(t, binding, tokens):
    n = count(binding, tokens)
    if binding["elementType"] == "u32":
        return t[:n].to(torch.int64) & 0xFFFFFFFF
    return t[:n].to(torch.float64)


class OurKernel:
    """One emitted kernel with device tensors for its bindings at T tokens."""

    def __init__(self, lib, kernel, tokens, inputs, copies=1):
        self.kernel, self.tokens = kernel, tokens
        self.launchers = [lib.launcher(l["symbol"]) for l in kernel["launchers"]]
        slots = 1 + max(b["index"] for b in kernel["bindings"])
        self.tensors = {b["name"]: flat_binding(b, tokens, inputs) for b in kernel["bindings"]}
        self.slot_sets, self.copies = [], []
        for copy in range(copies):
            slot = (ctypes.c_void_p * slots)()
            for b in kernel["bindings"]:
                t = self.tensors[b["name"]]
                # Read-only operands are rotated (fresh copies); written ones are shared.
                if copy > 0 and not b["written"]:
                    t = t.clone()
                    self.copies.append(t)
                slot[b["index"]] = t.data_ptr()
            self.slot_sets.append(slot)

    def launch(self, copy=0):
        for f in self.launchers:
            status = f(self.slot_sets[copy], self.tokens, ADAPTER_SCALE, None)
            if status != 0:
                raise RuntimeError(f"{self.kernel['name']}: launcher returned CUDA error {status}")

    def calls(self):
        return [lambda c=c: self.launch(c) for c in range(len(self.slot_sets))]

    def outputs(self):
        result = {}
        for b in self.kernel["bindings"]:
            if not b["written"]:
                continue
            values = as_float64(self.tensors[b["name"]], b, self.tokens)
            result[b["name"]] = values
            for p in b["parts"]:
                result[p["name"]] = values[p["offset"]:p["offset"] + count(p, self.tokens)]
        return result


def binding_bytes(kernel, tokens):
    read = sum(count(b, tokens) * b["elementBytes"] for b in kernel["bindings"] if not b["written"])
    written = sum(count(b, tokens) * b["elementBytes"] for b in kernel["bindings"] if b["written"])
    return read, written


# ---------------------------------------------------------------- PyTorch QA-LoRA (QALORA.md)

def unpack_codes(qweight, bits, rows):
    """GPTQ v1 qweight (int32 [words, N]) -> codes int32 [rows, N]."""
    n = qweight.shape[1]
    if 32 % bits == 0:
        shifts = torch.arange(0, 32, bits, device=qweight.device, dtype=torch.int32)
        codes = (qweight[:, None, :] >> shifts[None, :, None]) & ((1 << bits) - 1)
        return codes.reshape(-1, n)[:rows]
    bit = torch.arange(rows, device=qweight.device) * bits
    word, shift = bit // 32, (bit % 32).to(torch.int64)
    q = qweight.to(torch.int64) & 0xFFFFFFFF
    q = torch.cat([q, torch.zeros(1, n, dtype=torch.int64, device=q.device)])
    code = (q[word] >> shift[:, None]) | (q[word + 1] << (32 - shift[:, None]))
    return (code & ((1 << bits) - 1)).to(torch.int32)


def qalora_eager(x, qweight, scales, zeros, a, b, multiplier, bits, group, scale):
    """y = x·Ŵ + σ·(drop(pool(x))·A)·B with Ŵ dequantized from the packed codes every call."""
    k = x.shape[1]
    codes = unpack_codes(qweight, bits, scales.shape[0] * group)
    w = (scales.repeat_interleave(group, 0) * (codes.to(torch.float32) - zeros.repeat_interleave(group, 0)))[:k].to(x.dtype)
    y = x @ w
    pooled = torch.nn.functional.pad(x, (0, scales.shape[0] * group - k)).float().view(x.shape[0], -1, group).mean(-1)
    v = (pooled * multiplier) @ a
    return (y.float() + scale * (v @ b)).to(x.dtype)


def lora_bf16(x, w, a, b, scale):
    return x @ w + scale * ((x @ a) @ b)


def adapter_eager(x, a, b, multiplier, group, scale, w):
    pooled = x.float().view(x.shape[0], -1, group).mean(-1)
    return (x @ w).float().add_(scale * (((pooled * multiplier) @ a) @ b)).to(x.dtype)


# ---------------------------------------------------------------- kernel statistics

def ptxas_stats(path):
    stats, name = {}, None
    for line in open(path, errors="replace"):
        m = re.search(r"Compiling entry function '(\w+)' for '(\w+)'", line)
        if m:
            name = m.group(1) if m.group(2) == "sm_90a" else None
            continue
        if not name:
            continue
        s = stats.setdefault(name, {})
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            s.update(stackBytes=int(m.group(1)), spillBytes=int(m.group(2)) + int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            s["registers"] = int(m.group(1))
            smem = re.search(r"(\d+) bytes smem", line)
            s["sharedBytes"] = int(smem.group(1)) if smem else 0
    return stats


def sass_stats(library):
    try:
        text = subprocess.run(["cuobjdump", "--dump-sass", library], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        return {"_error": str(error)}
    stats, name = {}, None
    for line in text.splitlines():
        m = re.search(r"Function : (\w+)", line)
        if m:
            name = m.group(1)
            stats[name] = {"HGMMA": 0, "HMMA": 0, "LDG128": 0, "LDGSTS128": 0, "TMA": 0, "LDG": 0}
            continue
        if not name:
            continue
        s = stats[name]
        s["HGMMA"] += "HGMMA" in line
        s["HMMA"] += " HMMA" in line
        s["LDG128"] += bool(re.search(r"LDG\.E\.(EL\.|LTC\w*\.)*128", line)) or "LDG.E.128" in line
        s["LDG"] += " LDG" in line
        s["LDGSTS128"] += "LDGSTS" in line and ".128" in line
        s["TMA"] += "UTMALDG" in line or "UBLKCP" in line
    return stats


# ---------------------------------------------------------------- the run

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(HERE, "build"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true", help="fewer T per role")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--profile", action="store_true", help="only launch each kernel twice per T (for ncu)")
    parser.add_argument("--only", default="", help="regex on kernel names")
    parser.add_argument("--commit", default=os.environ.get("BENCH_COMMIT", "unknown"))
    parser.add_argument("--decode-tokens", default="", help="T of the decode role, comma-separated (default 1,16)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    described = json.load(open(os.path.join(args.build, "kernels", "kernels.json")))
    library_path = os.path.join(args.build, "libqalc-bench.so")
    lib = Library(library_path)
    kernels = [k for k in described["kernels"] if re.search(args.only, k["name"])]
    token_table = dict(QUICK_TOKENS if args.quick else TOKENS)
    if args.decode_tokens:
        token_table["decode"] = [int(t) for t in args.decode_tokens.split(",")]
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = True

    if args.profile:
        for k in kernels:
            for t in token_table[k["role"]]:
                inputs, _ = check_kernels.generate(k, t, ADAPTER_SCALE, torch.Generator().manual_seed(7), dev)
                ours = OurKernel(lib, k, t, inputs)
                ours.launch()
                ours.launch()
                torch.cuda.synchronize()
                print("profiled", k["name"], t, flush=True)
        return 0

    started = time.time()
    ceiling = ceilings()
    print(f"ceilings: copy {ceiling['copy_bytes_per_s'] / 1e12:.2f} TB/s, bf16 GEMM {ceiling['gemm_flops_per_s'] / 1e12:.0f} TFLOP/s", flush=True)
    ptxas = ptxas_stats(os.path.join(args.build, "ptxas.txt"))
    sass = sass_stats(library_path)
    compiled = None if args.no_compile else torch.compile(qalora_eager, dynamic=False)
    rows, failures = [], 0
    by_case = {}
    for k in kernels:
        L = k["layer"]
        by_case.setdefault((L["inFeatures"], L["outFeatures"], L["bits"], L["group"], L["rank"]), {})[k["role"]] = k
    for index, k in enumerate(kernels):
        L, role = k["layer"], k["role"]
        K, N, bits, g, r = L["inFeatures"], L["outFeatures"], L["bits"], L["group"], L["rank"]
        for t in token_table[role]:
            generator = torch.Generator().manual_seed(1000 * index + t + 1)
            inputs, reference = check_kernels.generate(k, t, ADAPTER_SCALE, generator, dev)
            read, written = binding_bytes(k, t)
            copies = 1 if role in ("forward", "backward_data") and t >= 512 else max(1, min(16, math.ceil(3 * L2_BYTES / max(read, 1))))
            ours = OurKernel(lib, k, t, inputs, copies)
            ours.launch()
            torch.cuda.synchronize()
            got = ours.outputs()
            tolerance = check_kernels.TOLERANCE[k["activation"]]
            errors = {name: check_kernels.compare(got[name], ref, name in ("codes", "qweight")) for name, ref in reference.items()}
            ok = all(e <= tolerance for e in errors.values())
            failures += 0 if ok else 1
            row = {"kernel": k["name"], "role": role, "K": K, "N": N, "bits": bits, "group": g, "rank": r, "T": t,
                   "errors": errors, "ok": ok, "bytes": read + written}
            row["ours_ms"] = cuda_time(ours.calls())
            flops = 2 * t * K * N
            row["floor_bytes_ms"] = (read + written) / ceiling["copy_bytes_per_s"] * 1e3
            row["floor_flops_ms"] = flops / ceiling["gemm_flops_per_s"] * 1e3
            row["floor_ms"] = max(row["floor_bytes_ms"], row["floor_flops_ms"])
            row["achieved_bytes_per_s"] = (read + written) / (row["ours_ms"] * 1e-3)
            row["achieved_flops_per_s"] = flops / (row["ours_ms"] * 1e-3)
            row["symbols"] = {s: {**ptxas.get(s, {}), **sass.get(s, {})} for s in k["symbols"]}
            if role in ("forward", "decode"):
                baselines(row, k, inputs, t, compiled, copies)
            if role == "forward" and t == 4096 and {"backward_data", "adapter_grad"} <= by_case[(K, N, bits, g, r)].keys():
                training(row, by_case[(K, N, bits, g, r)], lib, t, compiled)
            del ours
            torch.cuda.empty_cache()
            rows.append(row)
            print(summary_line(row), flush=True)
    result = {"commit": args.commit, "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "ceilings": ceiling,
              "rows": rows, "failures": failures, "seconds": time.time() - started}
    with open(os.path.join(args.out, "bench.json"), "w") as f:
        json.dump(result, f, indent=1)
    markdown = render(result)
    with open(os.path.join(args.out, "bench.md"), "w") as f:
        f.write(markdown)
    print(markdown[-6000:])
    return 0 if failures == 0 else 1


def torch_operands(inputs, k, t):
    L = k["layer"]
    x = inputs["input"].to(torch.bfloat16)
    qweight = (inputs["qweight"].to(torch.int64)).to(torch.int32).cuda()
    scales = inputs["groupScales"].reshape(L["groups"], L["outFeatures"]).float()
    zeros = inputs["groupZeros"].reshape(L["groups"], L["outFeatures"]).float()
    a = inputs["adapterA"].reshape(L["groups"], L["rank"]).float()
    b = inputs["adapterB"].reshape(L["rank"], L["outFeatures"]).float()
    multiplier = inputs.get("dropoutMultiplier", torch.ones(t, L["groups"], dtype=torch.float64, device="cuda")).reshape(t, L["groups"]).float()
    return x, qweight, scales, zeros, a, b, multiplier


BASELINES = {}  # (layer, T) -> the baseline times, measured once for all the variants of a kernel


def baselines(row, k, inputs, t, compiled, copies):
    L = k["layer"]
    key = (json.dumps(L, sort_keys=True), k["role"], t)
    if key in BASELINES:
        row.update(BASELINES[key])
        return
    before = set(row)
    measure_baselines(row, k, inputs, t, compiled, copies)
    BASELINES[key] = {name: row[name] for name in set(row) - before}


def measure_baselines(row, k, inputs, t, compiled, copies):
    L = k["layer"]
    x, qweight, scales, zeros, a, b, multiplier = torch_operands(inputs, k, t)
    K, N = L["inFeatures"], L["outFeatures"]
    sets = [(x, qweight, scales, zeros, a, b, multiplier)] + [(x, qweight.clone(), scales.clone(), zeros.clone(), a, b, multiplier) for _ in range(copies - 1)]
    args = (L["bits"], L["group"], ADAPTER_SCALE)
    row["eager_ms"] = cuda_time([lambda s=s: qalora_eager(*s, *args) for s in sets], repeats=5)
    w16 = [torch.randn(K, N, dtype=torch.bfloat16, device="cuda") * 0.02 for _ in range(min(copies, 4))]
    row["cublas_ms"] = cuda_time([lambda w=w: x @ w for w in w16])
    if K % L["group"] == 0:
        row["dequant_once_cublas_ms"] = cuda_time([lambda w=w: adapter_eager(x, a, b, multiplier, L["group"], ADAPTER_SCALE, w) for w in w16], repeats=5)
    if compiled is not None and L["bits"] == 4 and L["group"] == 32:
        try:
            row["compile_ms"] = cuda_time([lambda s=s: compiled(*s, *args) for s in sets], repeats=5)
        except Exception as error:  # a failed compile is reported, not fatal
            row["compile_error"] = str(error)[:300]


def training(row, case, lib, t, compiled):
    """Forward + backward at T: ours (forward, backward_data, adapter_grad) vs bf16 LoRA on cuBLAS and eager / compiled QA-LoRA."""
    generator = torch.Generator().manual_seed(99)
    parts = []
    for role in ("forward", "backward_data", "adapter_grad"):
        k = case[role]
        inputs, _ = check_kernels.generate(k, t, ADAPTER_SCALE, generator, torch.device("cuda"))
        parts.append(OurKernel(lib, k, t, inputs))
    row["ours_train_ms"] = cuda_time([lambda: [p.launch() for p in parts]])
    row["ours_train_parts_ms"] = [cuda_time(p.calls()) for p in parts]
    L = case["forward"]["layer"]
    K, N, r, G = L["inFeatures"], L["outFeatures"], L["rank"], L["groups"]
    x = torch.randn(t, K, dtype=torch.bfloat16, device="cuda", requires_grad=True)
    dy = torch.randn(t, N, dtype=torch.bfloat16, device="cuda")
    w = torch.randn(K, N, dtype=torch.bfloat16, device="cuda") * 0.02
    la = (torch.randn(K, r, dtype=torch.bfloat16, device="cuda") * 0.02).requires_grad_()
    lb = (torch.randn(r, N, dtype=torch.bfloat16, device="cuda") * 0.02).requires_grad_()
    row["lora_train_ms"] = cuda_time([lambda: lora_bf16(x, w, la, lb, ADAPTER_SCALE).backward(dy)], repeats=5)
    inputs, _ = check_kernels.generate(case["forward"], t, ADAPTER_SCALE, generator, torch.device("cuda"))
    _, qweight, scales, zeros, a, b, multiplier = torch_operands(inputs, case["forward"], t)
    a.requires_grad_()
    b.requires_grad_()
    args = (L["bits"], L["group"], ADAPTER_SCALE)
    row["eager_train_ms"] = cuda_time([lambda: qalora_eager(x, qweight, scales, zeros, a, b, multiplier, *args).backward(dy)], repeats=5)
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    qalora_eager(x, qweight, scales, zeros, a, b, multiplier, *args).backward(dy)
    torch.cuda.synchronize()
    row["eager_train_extra_bytes"] = torch.cuda.max_memory_allocated() - base
    if compiled is not None:
        try:
            row["compile_train_ms"] = cuda_time([lambda: compiled(x, qweight, scales, zeros, a, b, multiplier, *args).backward(dy)], repeats=5)
        except Exception as error:
            row["compile_train_error"] = str(error)[:300]
    del parts


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "—"


def summary_line(row):
    parts = [f"{row['kernel']} T={row['T']}", "ok" if row["ok"] else "FAIL " + json.dumps(row["errors"]), f"ours {row['ours_ms'] * 1e3:.1f} us",
             f"floor {row['floor_ms'] * 1e3:.1f} us"]
    for key in ("cublas_ms", "eager_ms", "compile_ms", "dequant_once_cublas_ms", "ours_train_ms", "lora_train_ms", "eager_train_ms", "compile_train_ms"):
        if key in row:
            parts.append(f"{key[:-3]} {row[key] * 1e3:.1f} us")
    return "; ".join(parts)


def render(result):
    c = result["ceilings"]
    lines = [f"# qalc CUDA kernels vs PyTorch and the ceilings ({result['gpu']}, commit {result['commit']})", "",
             f"PyTorch {result['torch']}. Ceilings measured in this run: device copy {c['copy_bytes_per_s'] / 1e12:.2f} TB/s (read + write), "
             f"bf16 GEMM 8192^3 {c['gemm_flops_per_s'] / 1e12:.0f} TFLOP/s. {result['failures']} case(s) outside tolerance vs float64.",
             "Times are medians (µs) of CUDA-event-timed back-to-back launches, read-only operands rotated past the L2. "
             "floor = max(bytes of the kernel's bindings / copy rate, 2TKN / GEMM rate). "
             "eager / compile = QA-LoRA in PyTorch from the packed codes (QALORA.md); cuBLAS = x·W bf16, unquantized, no adapter; "
             "dequant once = x·W bf16 + the adapter in eager.", "",
             "| kernel | T | err | ours µs | floor µs | % of floor | vs cuBLAS | eager µs | compile µs | cuBLAS µs | dequant once µs | GB/s | TFLOP/s | regs | smem | spill | HGMMA | LDG.128 | cp.async.128 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        sym = next(iter(row["symbols"].values()), {}) if row["T"] < 64 or len(row["symbols"]) == 1 else list(row["symbols"].values())[-1]
        if row["role"] in ("adapter_grad",) or row["T"] < 64:
            sym = max(row["symbols"].values(), key=lambda s: s.get("registers", 0), default={})
        err = max(row["errors"].values()) if row["errors"] else 0.0
        fmt = lambda key: f"{row[key] * 1e3:.1f}" if key in row else "—"  # noqa: E731
        lines.append("| " + " | ".join([
            row["kernel"], str(row["T"]), f"{err:.1e}" + ("" if row["ok"] else " **FAIL**"), fmt("ours_ms"), fmt("floor_ms"),
            f"{100 * row['floor_ms'] / row['ours_ms']:.0f}%", ratio(row["ours_ms"], row.get("cublas_ms")), fmt("eager_ms"), fmt("compile_ms"),
            fmt("cublas_ms"), fmt("dequant_once_cublas_ms"), f"{row['achieved_bytes_per_s'] / 1e9:.0f}", f"{row['achieved_flops_per_s'] / 1e12:.1f}",
            str(sym.get("registers", "?")), str(sym.get("sharedBytes", "?")), str(sym.get("spillBytes", "?")), str(sym.get("HGMMA", "?")),
            str(sym.get("LDG128", "?")), str(sym.get("LDGSTS128", "?"))]) + " |")
    train = [r for r in result["rows"] if "ours_train_ms" in r]
    if train:
        lines += ["", "## Forward + backward (forward, backward_data, adapter_grad) at T = 4096", "",
                  "| layer | ours ms (fwd, bwd_data, adapter_grad) | bf16 LoRA cuBLAS ms | eager QA-LoRA ms | compile ms | ours / LoRA | eager / ours | eager extra memory MB |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in train:
            p = ", ".join(f"{x:.3f}" for x in r["ours_train_parts_ms"])
            lines.append(f"| {r['K']}x{r['N']} | {r['ours_train_ms']:.3f} ({p}) | {r['lora_train_ms']:.3f} | {r['eager_train_ms']:.3f} | "
                         f"{r['compile_train_ms']:.3f} | " if "compile_train_ms" in r else
                         f"| {r['K']}x{r['N']} | {r['ours_train_ms']:.3f} ({p}) | {r['lora_train_ms']:.3f} | {r['eager_train_ms']:.3f} | — | ")
            lines[-1] += f"{r['ours_train_ms'] / r['lora_train_ms']:.2f}x | {r['eager_train_ms'] / r['ours_train_ms']:.2f}x | {r['eager_train_extra_bytes'] / 1e6:.0f} |"
    lines += ["", f"Run took {result['seconds']:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
