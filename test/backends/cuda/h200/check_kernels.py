#!/usr/bin/env python3
"""qalc CUDA kernels against a float64 reference taken straight from QALORA.md.

For every kernel in kernels.json (written by emit-harness-kernels.ts) and every token count
its role takes, generates random inputs (rounded to the dtype the kernel reads), writes them as
.bin files, runs the prebuilt harness once over all jobs, reads the outputs and writes a
markdown table of errors per kernel / T / output / dtype to OUT/results.md (and results.json).

Error: max |got - ref| / max |ref| over the whole output (a max-norm relative error), with ref
computed in float64 from exactly the values the kernel was given. Integer outputs (codes,
packed words) report the fraction of elements that differ.

    python3 check_kernels.py --harness build/qalc-cuda-harness --kernels build/kernels/kernels.json --out OUT
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

TOKENS = {"forward": [1, 5, 37, 130], "backward_data": [1, 5, 37, 130], "adapter_grad": [1, 5, 37, 130], "decode": [1, 3, 5, 11, 16]}
# Max-norm relative tolerances: a 16-bit store alone costs 2^-8 (bf16) / 2^-11 (fp16) relative;
# the tensor-core path also rounds the dequantized weight to the activation dtype.
TOLERANCE = {"bf16": 2e-2, "f16": 4e-3, "f32": 1e-5}
TORCH_DTYPE = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}


def device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_dtype(values, element_type):
    """float64 tensor -> the values the kernel sees (rounded), as float64."""
    if element_type in TORCH_DTYPE:
        return values.to(TORCH_DTYPE[element_type]).to(torch.float64)
    return values


def write_bin(path, values, element_type):
    t = values.detach().cpu()
    if element_type == "bf16":
        array = t.to(torch.bfloat16).view(torch.int16).numpy()
    elif element_type == "f16":
        array = t.to(torch.float16).numpy()
    elif element_type == "f32":
        array = t.to(torch.float32).numpy()
    elif element_type == "u32":
        array = t.to(torch.int64).numpy().astype(np.uint32)
    else:
        raise ValueError(element_type)
    array.tofile(path)


def read_bin(path, element_type, count):
    if element_type == "bf16":
        raw = np.fromfile(path, dtype=np.int16, count=count)
        return torch.from_numpy(raw).view(torch.bfloat16).to(torch.float64)
    if element_type == "f16":
        return torch.from_numpy(np.fromfile(path, dtype=np.float16, count=count)).to(torch.float64)
    if element_type == "f32":
        return torch.from_numpy(np.fromfile(path, dtype=np.float32, count=count)).to(torch.float64)
    if element_type == "u32":
        return torch.from_numpy(np.fromfile(path, dtype=np.uint32, count=count).astype(np.int64))
    raise ValueError(element_type)


def pack_qweight(codes, bits, word_rows):
    """GPTQ v1: column o is one little-endian bit stream, code i at bits i*b .. i*b+b-1."""
    rows, columns = codes.shape
    words = np.zeros((word_rows, columns), dtype=np.uint64)
    c = codes.cpu().numpy().astype(np.uint64)
    for i in range(rows):
        bit = i * bits
        word, shift = divmod(bit, 32)
        words[word] |= (c[i] << np.uint64(shift)) & np.uint64(0xFFFFFFFF)
        if shift + bits > 32:
            words[word + 1] |= c[i] >> np.uint64(32 - shift)
    return torch.from_numpy(words.astype(np.int64))


def dequantize(codes, scales, zeros, group):
    k = torch.arange(codes.shape[0], device=codes.device) // group
    return scales[k] * (codes.to(torch.float64) - zeros[k])


def rtn(weight, bits, group, symmetric):
    """QALORA.md's group-wise min-max quantization, float64, round half to even."""
    rows, columns = weight.shape
    max_code = 2**bits - 1
    w = weight.reshape(rows // group, group, columns)
    low = torch.clamp(w.min(dim=1).values, max=0.0)
    high = torch.clamp(w.max(dim=1).values, min=0.0)
    if symmetric:
        high = torch.maximum(low.abs(), high)
        low = torch.where(low < 0, -high, low)
    both_zero = (low == 0) & (high == 0)
    low = torch.where(both_zero, torch.full_like(low, -1.0), low)
    high = torch.where(both_zero, torch.full_like(high, 1.0), high)
    scales = (high - low) / max_code
    # z and q in float64 from the float64 scale, as src/quant/rtn.ts (the host's RTN) computes
    # them and the CUDA kernel now does: a code on an exact .5 (the range end of a symmetric
    # group, max / (2 max / 7) = 3.5) rounds by the last bit of the float64 scale, the host's way.
    zeros = torch.full_like(scales, float((max_code + 1) // 2)) if symmetric else torch.round(-low / scales) + 0.0
    codes = torch.clamp(torch.round(w / scales[:, None, :]) + zeros[:, None, :], 0, max_code)
    return codes.reshape(rows, columns), scales, zeros


class Case:
    def __init__(self, kernel, tokens, scale, generator, dev):
        self.k = kernel
        self.T = tokens
        self.scale = scale
        self.g = generator
        self.dev = dev
        self.layer = kernel["layer"]
        self.act = kernel["activation"]

    def randn(self, *shape, std=1.0):
        return torch.randn(*shape, generator=self.g, dtype=torch.float64).to(self.dev) * std

    def quantized(self):
        L = self.layer
        codes = torch.randint(0, 2 ** L["bits"], (L["paddedInFeatures"], L["outFeatures"]), generator=self.g).to(self.dev)
        scales = to_dtype(torch.rand(L["groups"], L["outFeatures"], generator=self.g, dtype=torch.float64).to(self.dev) * 0.04 + 0.01, "f32")
        # Float zeros, fractional as after a merge.
        zeros = to_dtype(torch.rand(L["groups"], L["outFeatures"], generator=self.g, dtype=torch.float64).to(self.dev) * (2 ** L["bits"] - 1), "f32")
        return codes, scales, zeros

    def adapter(self):
        L = self.layer
        a = to_dtype(self.randn(L["groups"], L["rank"], std=0.5), "f32")
        b = to_dtype(self.randn(L["rank"], L["outFeatures"], std=0.5), "f32")
        return a, b

    def dropout(self):
        L = self.layer
        keep = (torch.rand(self.T, L["groups"], generator=self.g) >= 0.25).to(torch.float64).to(self.dev)
        return keep / 0.75


def generate(kernel, tokens, scale, generator, dev):
    """Inputs by binding (part) name, and the float64 reference outputs by binding (part) name."""
    c = Case(kernel, tokens, scale, generator, dev)
    L, act, T, role = c.layer, c.act, tokens, kernel["role"]
    K, Kp, N, G, g, r = L["inFeatures"], L["paddedInFeatures"], L["outFeatures"], L["groups"], L["group"], L["rank"]
    word_rows = next(b for b in kernel["bindings"] if b["name"] == "qweight")["constant"] // N if any(b["name"] == "qweight" for b in kernel["bindings"]) else 0
    inputs, reference = {}, {}
    if role in ("forward", "decode", "backward_data", "dequantize"):
        codes, scales, zeros = c.quantized()
        inputs.update(qweight=pack_qweight(codes, L["bits"], word_rows), groupScales=scales, groupZeros=zeros)
        w_hat = dequantize(codes, scales, zeros, g)
    if role in ("forward", "decode"):
        x = to_dtype(c.randn(T, K), act)
        inputs["input"] = x
        xp = torch.zeros(T, Kp, dtype=torch.float64, device=dev)
        xp[:, :K] = x
        y = xp @ w_hat
        if r:
            a, b = c.adapter()
            inputs.update(adapterA=a, adapterB=b)
            u = L["poolingFactor"] * xp.reshape(T, G, g).sum(dim=2)
            dropped = u
            if L["dropout"]:
                mult = c.dropout()
                inputs["dropoutMultiplier"] = mult
                dropped = u * mult
            v = dropped @ a
            y = y + scale * v @ b
            reference.update(pooledInput=u, adapterActivation=v)
        reference["output"] = y
    elif role == "backward_data":
        dy = to_dtype(c.randn(T, N), act)
        inputs["outputGrad"] = dy
        dx = dy @ w_hat[:K].T
        if any(b["name"] == "pooledInputGrad" for b in kernel["bindings"]):
            du = to_dtype(c.randn(T, G), act)
            inputs["pooledInputGrad"] = du
            dx = dx + L["poolingFactor"] * du[:, torch.arange(K, device=dev) // g]
        reference["inputGrad"] = dx
    elif role == "adapter_grad":
        dy = to_dtype(c.randn(T, N), act)
        u = to_dtype(c.randn(T, G), act)
        v = to_dtype(c.randn(T, r), act)
        a, b = c.adapter()
        inputs.update(outputGrad=dy, pooledInput=u, adapterActivation=v, adapterA=a, adapterB=b)
        mult = torch.ones(T, G, dtype=torch.float64, device=dev)
        if L["dropout"]:
            mult = c.dropout()
            inputs["dropoutMultiplier"] = mult
        dv = scale * dy @ b.T
        reference.update(adapterActivationGrad=dv, adapterBGrad=scale * v.T @ dy, pooledInputGrad=(dv @ a.T) * mult, adapterAGrad=(u * mult).T @ dv)
    elif role == "dequantize":
        reference["weight"] = w_hat
    elif role == "quantize":
        weight = to_dtype(c.randn(Kp, N, std=0.05), "f32")
        weight[K:] = 0
        # The kernel reads W as a checkpoint stores it, [out, in].
        inputs["weight"] = weight.T.contiguous()
        codes, scales, zeros = rtn(weight, L["bits"], g, L["symmetric"])
        reference.update(codes=codes, groupScales=scales, groupZeros=zeros)
    elif role == "pack":
        codes = torch.randint(0, 2 ** L["bits"], (Kp, N), generator=c.g).to(dev)
        inputs["codes"] = codes
        reference["qweight"] = pack_qweight(codes, L["bits"], word_rows).to(dev)
    elif role == "merge":
        _, scales, zeros = c.quantized()
        a, b = c.adapter()
        inputs.update(groupScales=scales, groupZeros=zeros, adapterA=a, adapterB=b)
        reference["mergedZeros"] = zeros - L["poolingFactor"] * scale * (a @ b) / scales
    return inputs, reference


def jobs_of(kernel):
    role = kernel["role"]
    if role == "pack":
        return [("packQweight", 0)]  # unpack: see unpack jobs below
    return [("all", t) for t in TOKENS.get(role, [0])]


def write_inputs(kernel, tokens, inputs, directory):
    os.makedirs(directory, exist_ok=True)
    for binding in kernel["bindings"]:
        count = binding["perToken"] * tokens + binding["constant"]
        if binding["parts"]:
            if not any(p["name"] in inputs for p in binding["parts"]):
                continue
            flat = torch.zeros(count, dtype=torch.float64)
            for part in binding["parts"]:
                if part["name"] in inputs:
                    values = inputs[part["name"]].reshape(-1).cpu()
                    flat[part["offset"]:part["offset"] + values.numel()] = values
            write_bin(os.path.join(directory, binding["name"] + ".bin"), flat, binding["elementType"])
        elif binding["name"] in inputs:
            values = inputs[binding["name"]].reshape(-1)
            assert values.numel() == count, (kernel["name"], binding["name"], values.numel(), count)
            write_bin(os.path.join(directory, binding["name"] + ".bin"), values, binding["elementType"])


def read_outputs(kernel, tokens, directory):
    outputs = {}
    for binding in kernel["bindings"]:
        path = os.path.join(directory, "out_" + binding["name"] + ".bin")
        if not binding["written"] or not os.path.exists(path):
            continue
        count = binding["perToken"] * tokens + binding["constant"]
        values = read_bin(path, binding["elementType"], count)
        outputs[binding["name"]] = values
        for part in binding["parts"]:
            outputs[part["name"]] = values[part["offset"]:part["offset"] + part["perToken"] * tokens + part["constant"]]
    return outputs


def compare(got, ref, integer):
    ref = ref.reshape(-1).cpu().to(torch.float64)
    got = got.reshape(-1).cpu().to(torch.float64)
    if integer:
        return float((got != ref).to(torch.float64).mean()) if ref.numel() else 0.0
    if not torch.isfinite(got).all():
        return float("inf")
    scale = ref.abs().max().item() if ref.numel() else 0.0
    diff = (got - ref).abs().max().item() if ref.numel() else 0.0
    return diff / scale if scale > 0 else diff


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--harness", required=True)
    parser.add_argument("--kernels", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=20241)
    parser.add_argument("--reference-only", action="store_true", help="generate inputs and references, do not run the harness")
    args = parser.parse_args()

    described = json.load(open(args.kernels))
    # build.sh records the nvcc targets: a wgmma body runs only on an sm_90a build.
    gencode_path = os.path.join(os.path.dirname(args.kernels), "gencode.txt")
    gencode = open(gencode_path).read() if os.path.exists(gencode_path) else ""
    scale = float(described["adapterScale"])
    dev = device()
    work = os.path.join(args.out, "work")
    jobs, checks = [], []
    for index, kernel in enumerate(described["kernels"]):
        runs = jobs_of(kernel)
        for entry, tokens in runs:
            generator = torch.Generator().manual_seed(args.seed + 1000 * index + tokens)
            inputs, reference = generate(kernel, tokens, scale, generator, dev)
            directory = os.path.join(work, f"{kernel['name']}_T{tokens}")
            write_inputs(kernel, tokens, inputs, directory)
            jobs.append(f"{kernel['name']} {entry} {tokens} {scale} {directory}")
            checks.append((kernel, tokens, directory, reference, entry))
        if kernel["role"] == "pack":
            # unpackQweight: codes from a packed qweight.
            L = kernel["layer"]
            generator = torch.Generator().manual_seed(args.seed + 1000 * index + 7)
            codes = torch.randint(0, 2 ** L["bits"], (L["paddedInFeatures"], L["outFeatures"]), generator=generator)
            word_rows = next(b for b in kernel["bindings"] if b["name"] == "qweight")["constant"] // L["outFeatures"]
            directory = os.path.join(work, f"{kernel['name']}_unpack")
            write_inputs(kernel, 0, {"qweight": pack_qweight(codes, L["bits"], word_rows)}, directory)
            jobs.append(f"{kernel['name']} unpackQweight 0 {scale} {directory}")
            checks.append((kernel, 0, directory, {"codes": codes}, "unpackQweight"))
    os.makedirs(args.out, exist_ok=True)
    jobs_file = os.path.join(args.out, "jobs.txt")
    with open(jobs_file, "w") as f:
        f.write("\n".join(jobs) + "\n")
    print(f"{len(jobs)} jobs, reference on {dev}", flush=True)
    if args.reference_only:
        return 0
    harness = subprocess.run([args.harness, jobs_file], capture_output=True, text=True)
    with open(os.path.join(args.out, "harness.log"), "w") as f:
        f.write(harness.stdout + harness.stderr)
    failed_jobs = {line.split()[4] for line in harness.stdout.splitlines() if line.startswith("FAIL") and len(line.split()) > 4}

    rows, failures = [], 0
    for kernel, tokens, directory, reference, entry in checks:
        outputs = read_outputs(kernel, tokens, directory)
        tolerance = TOLERANCE[kernel["activation"]]
        for name, ref in reference.items():
            integer = name in ("codes", "qweight")
            if directory in failed_jobs or directory + ":" in failed_jobs or name not in outputs:
                error, ok = float("inf"), False
            else:
                error = compare(outputs[name], ref, integer)
                limit = 0.0 if integer else (1e-5 if kernel["role"] in ("quantize", "merge") else tolerance)
                ok = error <= limit
            failures += 0 if ok else 1
            if kernel["tensorCoreMinTokens"] and tokens >= kernel["tensorCoreMinTokens"]:
                body = kernel.get("tensorCorePath") or "mma.sync"
                path = f"tensor core ({body if body != 'wgmma' or 'sm_90a' in gencode else 'mma.sync'})"
            else:
                path = "decode" if kernel["role"] == "decode" else "portable"
            rows.append({"kernel": kernel["name"], "role": kernel["role"], "dtype": kernel["activation"], "T": tokens, "entry": entry, "path": path,
                         "output": name, "error": error, "kind": "mismatch fraction" if integer else "max rel", "ok": ok})
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    lines = ["# qalc CUDA kernels vs float64 reference (QALORA.md)", "",
             f"Device: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu reference'}; {len(jobs)} harness jobs; {failures} failing outputs.",
             "Error = max|got - ref| / max|ref| per output; integer outputs: fraction of differing elements.",
             f"Targets: {gencode.strip() or 'unknown'}.", "",
             "By path (outputs checked, failing, largest error per dtype):", ""]
    for path in sorted({row["path"] for row in rows}):
        chosen = [row for row in rows if row["path"] == path]
        worst = ", ".join(f"{dtype} {max(r['error'] for r in chosen if r['dtype'] == dtype):.2e}" for dtype in sorted({r["dtype"] for r in chosen}))
        lines.append(f"- {path}: {len(chosen)} outputs, {sum(1 for r in chosen if not r['ok'])} failing; largest error {worst}")
    lines += ["", "| kernel | role | dtype | T | path | output | error | ok |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['kernel']} | {row['role']} | {row['dtype']} | {row['T']} | {row['path']} | {row['output']} | {row['error']:.2e} ({row['kind']}) | {'yes' if row['ok'] else '**NO**'} |")
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(rows)} outputs checked, {failures} failing: {os.path.join(args.out, 'results.md')}")
    if harness.returncode != 0:
        print("harness reported failures; see harness.log", file=sys.stderr)
    return 0 if failures == 0 and harness.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
