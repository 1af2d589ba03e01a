"""The adapter's GEMMs at the 7B training shape, on cuBLAS through PyTorch, beside the base GEMM
and the stacked form [x | s·v]·[W ; B] (issue 10's design: r more reduction steps instead of a
second GEMM over y). Not a CI test; one device call:

    python3 adapter-gemm.py            # prints one JSON line per case, then a table

Why: qalc's profiled 7B step (d8a61c9) shows `gemm bf16→bf16 2048×4096×64` — y += s·v·B, k = 64 —
at ~0.040 ms a call, ~5× the 32 MB its y reads and writes take at the copy rate. If cuBLAS here
(PyTorch's addmm, the same library) does it near the copy rate, qalc's call is what to fix; if
not, the stacked GEMM is. Times: medians of 200 CUDA-event-timed calls after 20 warm-up calls.
"""

import json

import torch

T, R = 2048, 64
torch.manual_seed(0)
dev = "cuda"
bf16 = torch.bfloat16


def timed(fn, reps=200, warmup=20):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


rows = []


def case(name, ms, bytes_moved=None, flops=None):
    row = {"case": name, "ms": ms}
    if bytes_moved:
        row["GB/s"] = bytes_moved / ms / 1e6
    if flops:
        row["TFLOP/s"] = flops / ms / 1e9
    rows.append(row)
    print(json.dumps(row), flush=True)


big = torch.empty(256 * 2**20, dtype=torch.uint8, device=dev)
other = torch.empty_like(big)
case("copy 256 MiB (read + write)", timed(lambda: other.copy_(big)), 2 * big.numel())

for K, N in [(4096, 4096), (4096, 11008), (11008, 4096)]:
    x = torch.randn(T, K, device=dev, dtype=bf16)
    W = torch.randn(K, N, device=dev, dtype=bf16) * 0.02
    v = torch.randn(T, R, device=dev, dtype=bf16)
    B = torch.randn(R, N, device=dev, dtype=bf16) * 0.02
    y = torch.empty(T, N, device=dev, dtype=bf16)
    dy = torch.randn(T, N, device=dev, dtype=bf16)
    shape = f"{T}x{K}x{N}"
    case(f"base y = x·W {shape}", timed(lambda: torch.mm(x, W, out=y)), None, 2 * T * K * N)
    case(f"adapter y += s·v·B (addmm, k {R}) {T}x{R}x{N}", timed(lambda: y.addmm_(v, B, beta=1, alpha=0.5)), 2 * T * N * 2 + T * R * 2 + R * N * 2, 2 * T * R * N)
    for extra in (R, 3 * R):
        xs = torch.randn(T, K + extra, device=dev, dtype=bf16)
        Ws = torch.randn(K + extra, N, device=dev, dtype=bf16) * 0.02
        case(f"stacked y = [x | s·v]·[W ; B] k {K}+{extra} {shape}", timed(lambda: torch.mm(xs, Ws, out=y)), None, 2 * T * (K + extra) * N)
    dv = torch.empty(T, R, device=dev, dtype=bf16)
    case(f"dv = s·dy·Bᵀ {T}x{N}x{R}", timed(lambda: torch.mm(dy, B.t(), out=dv)), T * N * 2, 2 * T * R * N)
    dB = torch.empty(R, N, device=dev, dtype=bf16)
    case(f"dB = s·vᵀ·dy {R}x{T}x{N}", timed(lambda: torch.mm(v.t(), dy, out=dB)), T * N * 2, 2 * T * R * N)
    case(f"dx = dy·Wᵀ {T}x{N}x{K}", timed(lambda: torch.mm(dy, W.t())), None, 2 * T * K * N)
    case(f"elementwise y += 1 over {T}x{N} bf16", timed(lambda: y.add_(1)), 2 * T * N * 2)

print()
print("| case | ms | GB/s | TFLOP/s |")
print("|---|---:|---:|---:|")
for r in rows:
    gbs = f"{r['GB/s']:.0f}" if "GB/s" in r else ""
    tfl = f"{r['TFLOP/s']:.0f}" if "TFLOP/s" in r else ""
    print(f"| {r['case']} | {r['ms']:.4f} | {gbs} | {tfl} |")
