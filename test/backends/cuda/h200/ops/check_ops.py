#!/usr/bin/env python3
"""Checks qalc's CUDA model-op kernels (every op but attention and the linear layers) on a GPU.

For each compile folder emit-op-kernels.ts wrote (manifest.json, cuda/ops/*.cu and their sm_90a
fatbins, architecture.json), every entry point of every op in the manifest's "modelOps" is
launched through cuda_driver.py on random float32 inputs of ragged sizes (rows 1, 5, 37, 130,
512), with the grid computed from the call's sizes and the kernel's constants as each header
documents (the runtime's job), and compared with a float64 reference computed from the very
same inputs (the formulas of src/runtime/typescript/*.ts and src/train/adamw.ts). Outputs the
kernel does not write start as NaN, so a missed element fails. Gradient outputs start random,
so an overwrite instead of += fails. The error is the max-norm relative error
max|got - ref| / max|ref|; conversions, gathers and single float additions must be exact.
Then: determinism (bitwise equal reruns of the reductions), and timings (CUDA events).

Writes OUT/ops.md (the tables), OUT/results.json; exit 1 if any check fails.

    python3 check_ops.py --kernels DIR --out OUT            # on the GPU machine
    python3 check_ops.py --kernels DIR --out OUT --smoke    # anywhere: no GPU, no torch; runs
        every case's plumbing (argument lists against the manifest, references, the table)
"""
import argparse
import ctypes
import json
import math
import os
import sys
import time
import traceback

import numpy as np

ROWS = [1, 5, 37, 130, 512]
# (batch, seqLen) for each row count: rope's position is row % seqLen.
SEQUENCES = {1: (1, 1), 5: (1, 5), 37: (1, 37), 130: (2, 65), 512: (4, 128)}
QUICK = os.environ.get("QUICK") == "1"  # under compute-sanitizer: fewer, smaller cases, no timing
ONLY = [name for name in os.environ.get("ONLY", "").split(",") if name]  # ONLY=convert,unpool: just those cases (and the determinism check)
if QUICK:
    ROWS = [1, 37]

# Tolerances on the max-norm relative error: float32 arithmetic against float64.
TOLERANCE = 2e-5
EXACT = 0.0
GEMM_TOLERANCE = 5e-5  # sums of up to 32000 float32 products


# ---------------------------------------------------------------------------------------------
# Devices: the GPU through cuda_driver.py and torch, or a smoke device that only checks what a
# launch is given against the manifest (for running this script's plumbing without a GPU).

class F32:
    def __init__(self, value):
        self.value = float(value)


class Buffer:
    """A device array and its numpy element type (16-bit data travels as int16 bit patterns)."""

    def __init__(self, handle, dtype, shape):
        self.handle, self.dtype, self.shape = handle, dtype, shape


class Gpu:
    name = "gpu"

    def __init__(self):
        import torch
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import cuda_driver
        # A null pointer argument (None): cross_entropy's mask and adamw's sumSquares may be
        # null. The shared driver takes tensors, ints and its F32; None is added here.
        base = cuda_driver._argument
        cuda_driver._argument = lambda value: ctypes.c_uint64(0) if value is None else base(value)
        self.torch, self.driver = torch, cuda_driver
        self.modules = {}

    def function(self, fatbin, symbol):
        if fatbin not in self.modules:
            with open(fatbin, "rb") as f:
                self.modules[fatbin] = self.driver.Module(f.read())
        return self.modules[fatbin].function(symbol)

    def upload(self, array):
        array = np.ascontiguousarray(array)
        dtype = array.dtype
        if dtype == np.uint16:
            array = array.view(np.int16)
        return Buffer(self.torch.from_numpy(array.copy()).cuda(), dtype, array.shape)

    def download(self, buffer):
        self.torch.cuda.synchronize()
        array = buffer.handle.cpu().numpy()
        return array.view(np.uint16) if buffer.dtype == np.uint16 else array

    def launch(self, function, grid, block, shared, args):
        function.launch(grid, block, shared, [self._argument(a) for a in args])

    def _argument(self, value):
        if isinstance(value, Buffer):
            return value.handle
        return self.driver.F32(value.value) if isinstance(value, F32) else value

    def synchronize(self):
        self.torch.cuda.synchronize()

    def timer(self):
        return self.torch.cuda.Event(enable_timing=True), self.torch.cuda.Event(enable_timing=True)

    def matmul64(self, a, b):
        """a @ b in float64 on the GPU (the references of the LLaMA-7B GEMMs would take the CPU seconds)."""
        t = self.torch
        return (t.from_numpy(np.ascontiguousarray(a, dtype=np.float64)).cuda() @ t.from_numpy(np.ascontiguousarray(b, dtype=np.float64)).cuda()).cpu().numpy()


class HostMemory:
    """Arrays in host memory as the "device" buffers (numpy), for the two ways of running without a GPU."""

    def upload(self, array):
        array = np.array(array, copy=True)
        return Buffer(array, array.dtype, array.shape)

    def download(self, buffer):
        return buffer.handle.copy()

    def synchronize(self):
        pass

    def timer(self):
        return None

    def matmul64(self, a, b):
        return np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64)


class Emulator(HostMemory):
    """No GPU: the kernels' very source built for the CPU stand-in (emulate/build_emulated.py),
    launched block by block on numpy arrays. Checks indexing and arithmetic on ragged shapes."""
    name = "cpu emulation"

    def function(self, fatbin, symbol):
        library = fatbin[: -len(".sm_90a.fatbin")] + ".emu.so"
        function = getattr(ctypes.CDLL(library), "emulate__" + symbol)
        function.restype = None
        return function

    def launch(self, function, grid, block, shared, args):
        values = []
        for a in args:
            if a is None:
                values.append(ctypes.c_uint64(0))
            elif isinstance(a, Buffer):
                values.append(ctypes.c_uint64(a.handle.ctypes.data))
            elif isinstance(a, F32):
                values.append(ctypes.c_float(a.value))
            else:
                values.append(ctypes.c_uint32(a))
        pointers = (ctypes.c_void_p * len(values))(*[ctypes.addressof(v) for v in values])
        if 0 in grid:
            return
        function(*[ctypes.c_uint(int(g)) for g in grid], *[ctypes.c_uint(int(b)) for b in block], pointers)


class Smoke(HostMemory):
    """No GPU: launches do nothing (outputs keep their initial values), everything else runs."""
    name = "smoke"

    def function(self, fatbin, symbol):
        if not os.path.exists(fatbin):
            raise FileNotFoundError(fatbin)
        return symbol

    def launch(self, function, grid, block, shared, args):
        pass


class Op:
    """One model op of a compile folder: launches its entry points by name, checking the arguments
    against the manifest's parameter list (count, and pointer / u32 / f32 kind)."""

    def __init__(self, device, folder, entry):
        self.device, self.kernel = device, entry
        self.constants = entry["constants"]
        self.fatbin = os.path.join(folder, entry["file"][:-len(".cu")] + ".sm_90a.fatbin")
        self.entries = {e["name"]: e for e in entry["entryPoints"]}
        self.functions = {}

    def __getitem__(self, name):
        return self.constants[name]

    def launch(self, name, grid, args):
        e = self.entries[name]
        params = e["parameters"]
        if len(args) != len(params):
            raise TypeError(f"{e['symbol']}: {len(args)} arguments for {len(params)} parameters")
        for a, p in zip(args, params):
            ok = {"pointer": a is None or isinstance(a, Buffer), "u32": isinstance(a, int) and not isinstance(a, bool) and 0 <= a < 2**32,
                  "f32": isinstance(a, F32)}[p["type"]]
            if not ok:
                raise TypeError(f"{e['symbol']}: argument {p['name']} is not a {p['type']}: {a!r}")
        if name not in self.functions:
            self.functions[name] = self.device.function(self.fatbin, e["symbol"])
        grid = tuple(int(g) for g in grid) + (1,) * (3 - len(grid))
        self.device.launch(self.functions[name], grid, e["block"], e["sharedBytes"], args)


def ceil(a, b):
    return (a + b - 1) // b


# ---------------------------------------------------------------------------------------------
# Comparing.

def relative_error(got, ref):
    got = np.asarray(got, dtype=np.float64).ravel()
    ref = np.asarray(ref, dtype=np.float64).ravel()
    if got.shape != ref.shape:
        return math.inf
    both_nan = np.isnan(got) & np.isnan(ref)
    diff = np.where(both_nan, 0.0, np.abs(got - ref))
    if np.isnan(diff).any():
        return math.inf
    scale = np.max(np.abs(np.where(np.isnan(ref), 0.0, ref))) if ref.size else 0.0
    worst = float(np.max(diff)) if diff.size else 0.0
    return worst / scale if scale > 0 else worst


class Results:
    def __init__(self):
        self.rows = []

    def add(self, spec, op, entry, rows, output, error, tolerance, note=""):
        ok = error <= tolerance
        self.rows.append({"spec": spec, "op": op, "entry": entry, "rows": rows, "output": output, "error": error, "tolerance": tolerance, "ok": bool(ok), "note": note})
        flag = "ok" if ok else "FAIL"
        print(f"{flag:4} {spec} {op}.{entry} rows={rows} {output}: {error:.3e} (tolerance {tolerance:.0e}) {note}", flush=True)

    def failure(self, spec, op, rows, message):
        self.rows.append({"spec": spec, "op": op, "entry": "-", "rows": rows, "output": "-", "error": math.inf, "tolerance": 0, "ok": False, "note": message})
        print(f"FAIL {spec} {op} rows={rows}: {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# The bf16 / fp16 bit patterns, rounded to nearest even, as the kernels' conversions.

def to_bf16_bits(x):
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def from_bf16_bits(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def to_f16_bits(x):
    return np.asarray(x, dtype=np.float32).astype(np.float16).view(np.uint16)


def from_f16_bits(bits):
    return bits.view(np.float16).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Adapter dropout's draws, as src/runtime/typescript/dropout-draws.ts: draw i of seed's sequence
# hashes (seed + (i + 1)·0x9e3779b9) mod 2^32 with splitmix32; kept iff z >= ceil(p·2^32).

def dropout_bits(seed, offset, n):
    m = np.uint64(0xFFFFFFFF)
    index = (np.arange(n, dtype=np.uint64) + np.uint64(offset % 2**32) + np.uint64(1)) & m
    z = (np.uint64(seed) + index * np.uint64(0x9E3779B9)) & m
    z = ((z ^ (z >> np.uint64(16))) * np.uint64(0x21F0AAAD)) & m
    z = ((z ^ (z >> np.uint64(15))) * np.uint64(0x735A2D97)) & m
    return (z ^ (z >> np.uint64(15))) & m


def dropout_threshold(p):
    return math.ceil(p * 2**32)  # p·2^32 is exact in float64


# ---------------------------------------------------------------------------------------------
# The cases: one function per op, each checking every entry point at one row count.

TABLES = {}


class Case:
    def __init__(self, device, results, spec, arch, ops, rows):
        self.device, self.results, self.spec, self.arch, self.ops, self.rows = device, results, spec, arch, ops, rows
        self.rng = np.random.default_rng(1000 * rows + len(spec))

    def randn(self, *shape, scale=1.0):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def model_table(self, name, rows, columns, scale=1.0):
        """A random [rows, columns] table drawn once per spec (LLaMA-7B's classifier is 131M floats)."""
        key = (self.spec, name, rows, columns, scale)
        if key not in TABLES:
            TABLES[key] = (np.random.default_rng(len(TABLES)).standard_normal((rows, columns), dtype=np.float32) * np.float32(scale)).astype(np.float32)
        return TABLES[key]

    def nan(self, *shape):
        return np.full(shape, np.nan, dtype=np.float32)

    def up(self, array):
        return self.device.upload(array)

    def down(self, buffer):
        return self.device.download(buffer)

    def check(self, op, entry, output, got, ref, tolerance, note=""):
        self.results.add(self.spec, op, entry, self.rows, output, relative_error(got, ref), tolerance, note)

    # The entry points at a linear layer (…Activation) take 16-bit activations: they must give the
    # float32 entry point's results bit for bit, widened on load and rounded to nearest even on store.
    @staticmethod
    def activation_bits(op):
        return (to_bf16_bits, from_bf16_bits) if op.kernel["kernel"].endswith("bf16") else (to_f16_bits, from_f16_bits)

    def same_bits(self, op, entry, output, got, ref, note=""):
        mismatched = int(np.count_nonzero(np.asarray(got).view(np.uint16).ravel() != np.asarray(ref).astype(np.uint16).ravel()))
        self.results.add(self.spec, op, entry, self.rows, output, float(mismatched), EXACT, f"{note}{'; ' if note else ''}{mismatched} elements differ")

    @staticmethod
    def rounding_tolerance(op):
        """One rounding to 16 bits of each element: at most its unit roundoff (bf16 2^-8, fp16 2^-11) of the largest element."""
        return 5e-3 if op.kernel["kernel"].endswith("bf16") else 1e-3

    def same_floats(self, op, entry, output, got, ref, note=""):
        got, ref = np.asarray(got, dtype=np.float32).ravel(), np.asarray(ref, dtype=np.float32).ravel()
        mismatched = int(np.count_nonzero(got.view(np.uint32) != ref.view(np.uint32)))
        self.results.add(self.spec, op, entry, self.rows, output, float(mismatched), EXACT, f"{note}{'; ' if note else ''}{mismatched} elements differ from the float32 entry point's")

    # -- embedding
    def embedding(self):
        op = self.ops["embedding"]
        V, C, R = op["VOCAB"], op["CHANNELS"], self.rows
        table = self.model_table("embedding", V, C)
        tokens = self.rng.integers(0, V, R).astype(np.int32)
        tokens[0] = V - 1
        out = self.up(self.nan(R, C))
        op.launch("forward", (R, ceil(C, op["THREADS"])), [out, self.up(tokens), self.up(table), R])
        self.check("embedding", "forward", "out", self.down(out), table[tokens], EXACT)
        if R == 5:
            bad = tokens.copy()
            bad[2], bad[3] = V, -1
            out = self.up(self.randn(R, C))
            op.launch("forward", (R, ceil(C, op["THREADS"])), [out, self.up(bad), self.up(table), R])
            ref = table[np.clip(bad, 0, V - 1)].copy()
            ref[2:4] = np.nan
            self.check("embedding", "forward", "out (tokens V and -1: NaN rows)", self.down(out), ref, EXACT)
        if "forwardFromActivationTable" in op.entries:
            # The table in the activation type: the float32 rows are its widened values, exactly.
            to_bits, from_bits = self.activation_bits(op)
            table16 = to_bits(table)
            out = self.up(self.nan(R, C))
            op.launch("forwardFromActivationTable", (R, ceil(C, op["THREADS"])), [out, self.up(tokens), self.up(table16), R])
            self.check("embedding", "forwardFromActivationTable", "out", self.down(out), from_bits(table16)[tokens], EXACT)

    # -- rmsnorm
    def rmsnorm(self):
        op = self.ops["rmsnorm"]
        C, eps, R = op["CHANNELS"], op["EPS"], self.rows
        grid = (ceil(R, op["ROWS_PER_BLOCK"]),)
        x = self.randn(R, C, scale=2.0)
        w = (1.0 + self.randn(C, scale=0.5)).astype(np.float32)
        out, rstd = self.up(self.nan(R, C)), self.up(self.nan(R))
        op.launch("forward", grid, [out, rstd, self.up(x), self.up(w), R])
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        r = 1.0 / np.sqrt(np.mean(x64 * x64, axis=1) + np.float64(np.float32(eps)))
        self.check("rmsnorm", "forward", "out", self.down(out), w64 * (r[:, None] * x64), TOLERANCE)
        self.check("rmsnorm", "forward", "rstd", self.down(rstd), r, TOLERANCE)
        if "forwardToActivation" in op.entries:
            to_bits, _ = self.activation_bits(op)
            out16, rstd16 = self.up(np.full((R, C), 0x7FC1, dtype=np.uint16)), self.up(self.nan(R))
            op.launch("forwardToActivation", grid, [out16, rstd16, self.up(x), self.up(w), R])
            self.same_bits("rmsnorm", "forwardToActivation", "out bits (the forward's, rounded)", self.down(out16), to_bits(self.down(out)))
            self.same_floats("rmsnorm", "forwardToActivation", "rstd", self.down(rstd16), self.down(rstd))
        if "forwardToActivationFewRows" in op.entries and R <= 64:
            # A block a row (a decode step's few rows): the same sum in another order, so within
            # one 16-bit rounding of the float64 result, not bit for bit the warp-a-row entry's.
            _, from_bits16 = self.activation_bits(op)
            few16, few_rstd = self.up(np.full((R, C), 0x7FC1, dtype=np.uint16)), self.up(self.nan(R))
            op.launch("forwardToActivationFewRows", (R,), [few16, few_rstd, self.up(x), self.up(w), R])
            self.check("rmsnorm", "forwardToActivationFewRows", "out", from_bits16(self.down(few16)), w64 * (r[:, None] * x64), self.rounding_tolerance(op))
            self.check("rmsnorm", "forwardToActivationFewRows", "rstd", self.down(few_rstd), r, TOLERANCE)
        dy, dx0 = self.randn(R, C), self.randn(R, C)
        rstd32 = r.astype(np.float32)
        dx = self.up(dx0)
        op.launch("backward", grid, [dx, self.up(dy), self.up(x), self.up(w), self.up(rstd32), R])
        r64, dy64 = rstd32.astype(np.float64), dy.astype(np.float64)
        dot = np.sum(dy64 * w64 * x64, axis=1)
        term = r64[:, None] * w64 * dy64 - (r64 ** 3 * dot / C)[:, None] * x64
        self.check("rmsnorm", "backward", "dx (+=)", self.down(dx), dx0 + term, TOLERANCE)
        if "backwardOverwrite" in op.entries:
            # dx starts NaN: a read of it poisons the row. Bit for bit the backward's into zeros.
            dx, zeros = self.up(self.nan(R, C)), self.up(np.zeros((R, C), np.float32))
            for entry, buffer in (("backwardOverwrite", dx), ("backward", zeros)):
                op.launch(entry, grid, [buffer, self.up(dy), self.up(x), self.up(w), self.up(rstd32), R])
            self.check("rmsnorm", "backwardOverwrite", "dx (=)", self.down(dx), term, TOLERANCE)
            self.same_floats("rmsnorm", "backwardOverwrite", "dx (the backward's into zeros)", self.down(dx), self.down(zeros))
        if "forwardKeepingInput" in op.entries:
            # The forwards that also keep x in 16 bits for the backward: the same out and rstd, bit
            # for bit, and kept = x rounded as the conversion rounds it.
            to_bits, from_bits = self.activation_bits(op)
            for entry, plain, out_of in (("forwardKeepingInput", "forward", lambda: self.up(self.nan(R, C))),
                                         ("forwardToActivationKeepingInput", "forwardToActivation", lambda: self.up(np.full((R, C), 0x7FC1, dtype=np.uint16)))):
                plain_out, plain_rstd = out_of(), self.up(self.nan(R))
                op.launch(plain, grid, [plain_out, plain_rstd, self.up(x), self.up(w), R])
                kept_out, kept_rstd, kept = out_of(), self.up(self.nan(R)), self.up(np.full((R, C), 0x7FC1, dtype=np.uint16))
                op.launch(entry, grid, [kept_out, kept_rstd, kept, self.up(x), self.up(w), R])
                if plain == "forward":
                    self.same_floats("rmsnorm", entry, "out (the plain forward's)", self.down(kept_out), self.down(plain_out))
                else:
                    self.same_bits("rmsnorm", entry, "out bits (the plain forward's)", self.down(kept_out), self.down(plain_out))
                self.same_floats("rmsnorm", entry, "rstd", self.down(kept_rstd), self.down(plain_rstd))
                self.same_bits("rmsnorm", entry, "kept bits (x rounded)", self.down(kept), to_bits(x))
            # The backwards of the kept x: the float64 reference over the rounded x.
            x16 = to_bits(x)
            xr64 = from_bits(x16).astype(np.float64)
            term16 = r64[:, None] * w64 * dy64 - (r64 ** 3 * np.sum(dy64 * w64 * xr64, axis=1) / C)[:, None] * xr64
            dx = self.up(dx0)
            op.launch("backwardFromActivation", grid, [dx, self.up(dy), self.up(x16), self.up(w), self.up(rstd32), R])
            self.check("rmsnorm", "backwardFromActivation", "dx (+=)", self.down(dx), dx0 + term16, TOLERANCE)
            dx = self.up(self.nan(R, C))
            op.launch("backwardOverwriteFromActivation", grid, [dx, self.up(dy), self.up(x16), self.up(w), self.up(rstd32), R])
            self.check("rmsnorm", "backwardOverwriteFromActivation", "dx (=)", self.down(dx), term16, TOLERANCE)

    # -- convert
    def convert(self):
        op = self.ops["convert"]
        T, R = op["THREADS"], self.rows
        bf16 = op.kernel["kernel"].endswith("bf16")
        to_bits, from_bits = (to_bf16_bits, from_bf16_bits) if bf16 else (to_f16_bits, from_f16_bits)
        for columns in (self.arch["dim"], self.arch["hiddenDim"]):
            stride = columns + 3  # a padded binding width, ragged on purpose
            note = f"columns {columns}, stride {stride}"
            x = self.randn(R, columns, scale=3.0)
            out = self.up(np.full((R, stride), 0x7FC1, dtype=np.uint16))
            op.launch("toActivation", (R, ceil(stride, T)), [out, self.up(x), R, columns, stride])
            got = self.down(out)
            ref = np.zeros((R, stride), dtype=np.uint16)
            ref[:, :columns] = to_bits(x)
            mismatched = int(np.count_nonzero(got != ref))
            self.results.add(self.spec, "convert", "toActivation", R, "out bits (padding 0)", float(mismatched), EXACT, f"{note}; {mismatched} elements differ")
            offset = 5
            source = np.concatenate([np.full(offset, 0x7FC1, dtype=np.uint16), to_bits(self.randn(R * stride, scale=3.0))])
            decoded = from_bits(source[offset:]).reshape(R, stride)[:, :columns]
            out = self.up(self.nan(R, columns))
            grid = (R, ceil(columns, T))
            op.launch("fromActivation", grid, [out, self.up(source), R, columns, stride, offset])
            self.check("convert", "fromActivation", "out", self.down(out), decoded, EXACT, f"{note}, offset {offset}")
            start = self.randn(R, columns)
            out = self.up(start)
            op.launch("accumulateFromActivation", grid, [out, self.up(source), R, columns, stride, offset])
            self.check("convert", "accumulateFromActivation", "out (+=)", self.down(out), start + decoded, EXACT, f"{note}, offset {offset}")
        # copyActivation: x into [x | v] (rows of 16-byte vectors: K, K + r multiples of 8) and v
        # beside it (offset K), then a ragged layout (odd strides and offsets: element by element).
        V = op["COPY_VECTOR"]
        for columns, sourceStride, stride, sourceOffset, offset in ((self.arch["dim"], self.arch["dim"], self.arch["dim"] + 64, 0, 0), (64, 64, self.arch["dim"] + 64, 0, self.arch["dim"]), (self.arch["dim"] + 3, self.arch["dim"] + 5, self.arch["dim"] + 9, 3, 7)):
            note = f"columns {columns}, rows of {sourceStride} from {sourceOffset} into rows of {stride} from {offset}"
            source = to_bits(self.randn(sourceOffset + R * sourceStride, scale=3.0))
            before = np.full(offset + R * stride, 0x7FC1, dtype=np.uint16)
            out = self.up(before)
            op.launch("copyActivation", (R, ceil(columns, T * V)), [out, self.up(source), R, columns, stride, sourceStride, offset, sourceOffset])
            ref = before.copy()
            for r in range(R):
                ref[offset + r * stride:offset + r * stride + columns] = source[sourceOffset + r * sourceStride:sourceOffset + r * sourceStride + columns]
            mismatched = int(np.count_nonzero(self.down(out) != ref))
            self.results.add(self.spec, "convert", "copyActivation", R, "out bits (the rest untouched)", float(mismatched), EXACT, f"{note}; {mismatched} elements differ")
        # scaledToActivation: σ·B (rank rows) under Ŵ's rows in the weight scratch.
        rank, columns, scale = 8, self.arch["dim"], 0.3
        b = self.randn(rank, columns)
        offset = 5 * columns
        before = np.full(offset + rank * columns + 3, 0x7FC1, dtype=np.uint16)
        out = self.up(before)
        op.launch("scaledToActivation", (rank, ceil(columns, T)), [out, self.up(b), rank, columns, columns, offset, F32(scale)])
        ref = before.copy()
        ref[offset:offset + rank * columns] = to_bits((np.float32(scale) * b).astype(np.float32)).reshape(-1)
        mismatched = int(np.count_nonzero(self.down(out) != ref))
        self.results.add(self.spec, "convert", "scaledToActivation", rank, "out bits (the rest untouched)", float(mismatched), EXACT, f"{rank} rows of {columns} at element {offset}, scale {scale}; {mismatched} elements differ")

    # -- rope
    def rope(self):
        op = self.ops["rope"]
        hs, R = op["HEAD_SIZE"], self.rows
        batch, seq = SEQUENCES[R]
        pairs = hs // 2
        theta = float(self.arch["ropeTheta"])
        # run.c's tables (src/model/rope-angles.ts): float32 at each step.
        p = np.arange(pairs)
        freq = (np.float32(1.0) / np.power(np.float64(theta), (2 * p / hs).astype(np.float32).astype(np.float64)).astype(np.float32)).astype(np.float32)
        angle = (np.arange(seq)[:, None].astype(np.float32) * freq[None, :]).astype(np.float32)
        cos, sin = np.cos(angle.astype(np.float64)).astype(np.float32), np.sin(angle.astype(np.float64)).astype(np.float32)
        for heads, label in ((self.arch["heads"], "q"), (self.arch["kvHeads"], "k")):
            width = heads * hs
            grid = (ceil(R * width // 2, op["THREADS"]),)
            for entry, direction in (("forward", 1.0), ("backward", -1.0)):
                x = self.randn(R, width)
                buffer = self.up(x)
                op.launch(entry, grid, [buffer, self.up(cos), self.up(sin), R, seq, width])
                t = np.arange(R) % seq
                c = np.tile(cos[t].astype(np.float64), (1, heads))
                s = direction * np.tile(sin[t].astype(np.float64), (1, heads))
                x0, x1 = x[:, 0::2].astype(np.float64), x[:, 1::2].astype(np.float64)
                ref = np.empty((R, width))
                ref[:, 0::2] = x0 * c - x1 * s
                ref[:, 1::2] = x0 * s + x1 * c
                self.check("rope", entry, f"{label} in place", self.down(buffer), ref, TOLERANCE, f"batch {batch} x seqLen {seq}, width {width}")
                if entry == "backward" and "backwardToActivation" in op.entries:
                    # The in-place backward's float32 result rounded once: bit for bit, and float64's to a 16-bit rounding.
                    to_bits, from_bits = self.activation_bits(op)
                    out16 = self.up(np.full((R, width), 0x7FC1, dtype=np.uint16))
                    op.launch("backwardToActivation", grid, [out16, self.up(x), self.up(cos), self.up(sin), R, seq, width])
                    self.same_bits("rope", "backwardToActivation", f"d{label} bits (the backward's, rounded)", self.down(out16), to_bits(self.down(buffer)), f"batch {batch} x seqLen {seq}, width {width}")
                    self.check("rope", "backwardToActivation", f"d{label}", from_bits(self.down(out16)), ref, self.rounding_tolerance(op), f"batch {batch} x seqLen {seq}, width {width}")
            if "forwardFromActivation" in op.entries:
                to_bits, from_bits = self.activation_bits(op)
                x16 = to_bits(self.randn(R, width))
                turned = self.up(from_bits(x16).astype(np.float32))
                op.launch("forward", grid, [turned, self.up(cos), self.up(sin), R, seq, width])
                out = self.up(self.nan(R, width))
                op.launch("forwardFromActivation", grid, [out, self.up(x16), self.up(cos), self.up(sin), R, seq, width])
                self.same_floats("rope", "forwardFromActivation", f"{label} out", self.down(out), self.down(turned), f"batch {batch} x seqLen {seq}, width {width}")
                if "forwardInActivation" in op.entries:
                    # In place in the activation type (attention's bf16 rows): the float32 entry point's values, rounded to nearest even.
                    rows16 = self.up(x16)
                    op.launch("forwardInActivation", grid, [rows16, self.up(cos), self.up(sin), R, seq, width])
                    self.same_bits("rope", "forwardInActivation", f"{label} in place", self.down(rows16), to_bits(self.down(turned)), f"batch {batch} x seqLen {seq}, width {width}")
            if "decodeForward" in op.entries:
                # Generation's one token at the decode step's position (rows - 1 of tables with rows + 3), read from its buffer.
                positions, at = R + 3, R - 1
                whole = (np.arange(positions)[:, None].astype(np.float32) * freq[None, :]).astype(np.float32)
                wcos, wsin = np.cos(whole.astype(np.float64)).astype(np.float32), np.sin(whole.astype(np.float64)).astype(np.float32)
                step = self.up(np.array([3, at], dtype=np.int32))
                x = self.randn(width)
                buffer = self.up(x)
                decode_grid = (ceil(width // 2, op["THREADS"]),)
                op.launch("decodeForward", decode_grid, [buffer, self.up(wcos), self.up(wsin), step, width])
                c, sn = np.tile(wcos[at].astype(np.float64), heads), np.tile(wsin[at].astype(np.float64), heads)
                ref = np.empty(width)
                ref[0::2] = x[0::2] * c - x[1::2] * sn
                ref[1::2] = x[0::2] * sn + x[1::2] * c
                self.check("rope", "decodeForward", f"{label} in place", self.down(buffer), ref, TOLERANCE, f"position {at} of {positions}, width {width}")
                to_bits, from_bits = self.activation_bits(op)
                x16 = to_bits(self.randn(width))
                turned = self.up(from_bits(x16).astype(np.float32))
                op.launch("decodeForward", decode_grid, [turned, self.up(wcos), self.up(wsin), step, width])
                out = self.up(self.nan(width))
                op.launch("decodeFromActivation", decode_grid, [out, self.up(x16), self.up(wcos), self.up(wsin), step, width])
                self.same_floats("rope", "decodeFromActivation", f"{label} out", self.down(out), self.down(turned), f"position {at} of {positions}, width {width}")
        if "decodePairFromActivation" in op.entries:
            # q and k in one launch: bit for bit decodeFromActivation's two (k's pairs after q's, whole blocks or not).
            positions, at = R + 3, R - 1
            whole = (np.arange(positions)[:, None].astype(np.float32) * freq[None, :]).astype(np.float32)
            wcos, wsin = self.up(np.cos(whole.astype(np.float64)).astype(np.float32)), self.up(np.sin(whole.astype(np.float64)).astype(np.float32))
            step = self.up(np.array([3, at], dtype=np.int32))
            to_bits, from_bits = self.activation_bits(op)
            width, key_width = self.arch["heads"] * hs, self.arch["kvHeads"] * hs
            q16, k16 = self.up(to_bits(self.randn(width))), self.up(to_bits(self.randn(key_width)))
            q_one, k_one = self.up(self.nan(width)), self.up(self.nan(key_width))
            op.launch("decodeFromActivation", (ceil(width // 2, op["THREADS"]),), [q_one, q16, wcos, wsin, step, width])
            op.launch("decodeFromActivation", (ceil(key_width // 2, op["THREADS"]),), [k_one, k16, wcos, wsin, step, key_width])
            q_pair, k_pair = self.up(self.nan(width)), self.up(self.nan(key_width))
            op.launch("decodePairFromActivation", (ceil((width + key_width) // 2, op["THREADS"]),), [q_pair, q16, k_pair, k16, wcos, wsin, step, width, key_width])
            note = f"position {at} of {positions}, widths {width} and {key_width}"
            self.same_floats("rope", "decodePairFromActivation", "q out", self.down(q_pair), self.down(q_one), note)
            self.same_floats("rope", "decodePairFromActivation", "k out", self.down(k_pair), self.down(k_one), note)

    # -- swiglu
    def swiglu(self):
        op = self.ops["swiglu"]
        n = self.rows * self.arch["hiddenDim"]
        grid = (ceil(n, op["THREADS"]),)
        gate, up = self.randn(n, scale=3.0), self.randn(n)
        out = self.up(self.nan(n))
        op.launch("forward", grid, [out, self.up(gate), self.up(up), n])
        g, u = gate.astype(np.float64), up.astype(np.float64)
        sig = 1.0 / (1.0 + np.exp(-g))
        self.check("swiglu", "forward", "out", self.down(out), g * sig * u, TOLERANCE)
        dOut, dGate0, dUp0 = self.randn(n), self.randn(n), self.randn(n)
        dGate, dUp = self.up(dGate0), self.up(dUp0)
        op.launch("backward", grid, [dGate, dUp, self.up(dOut), self.up(gate), self.up(up), n])
        d = dOut.astype(np.float64)
        self.check("swiglu", "backward", "dGate (+=)", self.down(dGate), dGate0 + d * u * sig * (1 + g * (1 - sig)), TOLERANCE)
        self.check("swiglu", "backward", "dUp (+=)", self.down(dUp), dUp0 + d * g * sig, TOLERANCE)
        if "forwardInActivation" in op.entries:
            to_bits, from_bits = self.activation_bits(op)
            gate16, up16 = to_bits(gate), to_bits(up)
            gate32, up32 = from_bits(gate16).astype(np.float32), from_bits(up16).astype(np.float32)
            out32, out16 = self.up(self.nan(n)), self.up(np.full(n, 0x7FC1, dtype=np.uint16))
            op.launch("forward", grid, [out32, self.up(gate32), self.up(up32), n])
            op.launch("forwardInActivation", grid, [out16, self.up(gate16), self.up(up16), n])
            self.same_bits("swiglu", "forwardInActivation", "out bits (the forward's on the widened inputs, rounded)", self.down(out16), to_bits(self.down(out32)))
            grads32, grads16 = [self.up(dGate0), self.up(dUp0)], [self.up(dGate0), self.up(dUp0)]
            op.launch("backward", grid, [*grads32, self.up(dOut), self.up(gate32), self.up(up32), n])
            op.launch("backwardFromActivation", grid, [*grads16, self.up(dOut), self.up(gate16), self.up(up16), n])
            for label, got, want in zip(("dGate (+=)", "dUp (+=)"), grads16, grads32):
                self.same_floats("swiglu", "backwardFromActivation", label, self.down(got), self.down(want))
        if "backwardToActivation" in op.entries:
            # dGate and dUp written in 16 bits (they start NaN): the float32 backward's into zeros
            # on the same widened gate and up, rounded once; float64's to a 16-bit rounding.
            to_bits, from_bits = self.activation_bits(op)
            gate16, up16 = to_bits(gate), to_bits(up)
            zeros32 = [self.up(np.zeros(n, np.float32)), self.up(np.zeros(n, np.float32))]
            out16 = [self.up(np.full(n, 0x7FC1, dtype=np.uint16)), self.up(np.full(n, 0x7FC1, dtype=np.uint16))]
            op.launch("backwardFromActivation", grid, [*zeros32, self.up(dOut), self.up(gate16), self.up(up16), n])
            op.launch("backwardToActivation", grid, [*out16, self.up(dOut), self.up(gate16), self.up(up16), n])
            g16, u16 = from_bits(gate16).astype(np.float64), from_bits(up16).astype(np.float64)
            sig16 = 1.0 / (1.0 + np.exp(-g16))
            refs = (d * u16 * sig16 * (1 + g16 * (1 - sig16)), d * g16 * sig16)
            for label, got, zeroed, ref in zip(("dGate", "dUp"), out16, zeros32, refs):
                self.same_bits("swiglu", "backwardToActivation", f"{label} bits (the backward's into zeros, rounded)", self.down(got), to_bits(self.down(zeroed)))
                self.check("swiglu", "backwardToActivation", label, from_bits(self.down(got)), ref, self.rounding_tolerance(op))

    # -- residual
    def residual(self):
        op = self.ops["residual"]
        n = self.rows * self.arch["dim"]
        grid = (ceil(n, op["THREADS"]),)
        a, b = self.randn(n), self.randn(n)
        out = self.up(self.nan(n))
        op.launch("add", grid, [out, self.up(a), self.up(b), n])
        self.check("residual", "add", "out", self.down(out), a + b, EXACT)
        if "addFromActivation" in op.entries:
            to_bits, from_bits = self.activation_bits(op)
            b16 = to_bits(b)
            op.launch("addFromActivation", grid, [out, self.up(a), self.up(b16), n])
            self.check("residual", "addFromActivation", "out", self.down(out), a + from_bits(b16).astype(np.float32), EXACT)
        x = self.up(self.randn(n + 1))
        op.launch("zero", grid, [x, n])
        got = self.down(x)
        self.check("residual", "zero", "x[:count]", got[:n], np.zeros(n, dtype=np.float32), EXACT)
        offset = 7
        start, source = self.randn(n), self.randn(n + offset)
        out = self.up(start)
        op.launch("accumulate", grid, [out, self.up(source), offset, n])
        self.check("residual", "accumulate", "out (+=)", self.down(out), start + source[offset:], EXACT, f"offset {offset}")

    # -- lm_head
    def lm_head(self):
        op = self.ops["lm_head"]
        C, V, R, tile = op["CHANNELS"], op["VOCAB"], self.rows, op["TILE"]
        x, W = self.randn(R, C), self.model_table("classifier", V, C, scale=1 / math.sqrt(C))
        logits = self.up(self.nan(R, V))
        op.launch("forward", (ceil(V, tile), ceil(R, tile)), [logits, self.up(x), self.up(W), R])
        W64 = W.astype(np.float64)
        self.check("lm_head", "forward", "logits", self.down(logits), self.device.matmul64(x, W64.T), GEMM_TOLERANCE)
        # The gradient starts at a tenth of what is added (std 1/sqrt(C)): an overwrite fails, and so does a wrong sum.
        dL, dx0 = self.randn(R, V, scale=1 / math.sqrt(V)), self.randn(R, C, scale=0.1 / math.sqrt(C))
        dx = self.up(dx0)
        op.launch("backward", (ceil(C, tile), ceil(R, tile)), [dx, self.up(dL), self.up(W), R])
        self.check("lm_head", "backward", "dx (+=)", self.down(dx), dx0 + self.device.matmul64(dL, W64), GEMM_TOLERANCE)

    # -- cross_entropy
    def cross_entropy(self):
        op = self.ops["cross_entropy"]
        V, R, T = op["VOCAB"], self.rows, op["THREADS"]
        logits = self.randn(R, V, scale=3.0)
        targets = self.rng.integers(0, V, R).astype(np.int32)
        targets[self.rng.random(R) < 0.2] = -1
        mask = (self.rng.random(R) >= 0.2).astype(np.uint8)
        l64 = logits.astype(np.float64)
        top = l64.max(axis=1, keepdims=True)
        e = np.exp(l64 - top)
        probs_ref = e / e.sum(axis=1, keepdims=True)
        lse = (top + np.log(e.sum(axis=1, keepdims=True)))[:, 0]
        for masked in (True, False):
            counted = (targets >= 0) & (mask != 0 if masked else True)
            label = "mask" if masked else "no mask (null)"
            mask_arg = self.up(mask) if masked else None
            probs, row_loss = self.up(self.nan(R, V)), self.up(self.nan(R))
            op.launch("forward", (R,), [probs, row_loss, self.up(logits), self.up(targets), mask_arg, R])
            loss_ref = np.where(counted, lse - l64[np.arange(R), np.maximum(targets, 0)], 0.0)
            self.check("cross_entropy", "forward", "probs", self.down(probs), probs_ref, TOLERANCE, label)
            self.check("cross_entropy", "forward", "rowLoss", self.down(row_loss), loss_ref, TOLERANCE, label)
            row_loss32 = loss_ref.astype(np.float32)
            loss = self.up(self.nan(2))
            op.launch("loss", (1,), [loss, self.up(row_loss32), self.up(targets), mask_arg, R])
            got = self.down(loss)
            total = float(np.sum(row_loss32.astype(np.float64)[counted]))
            self.check("cross_entropy", "loss", "summed loss", got[0:1], [total], 1e-6, label)
            self.check("cross_entropy", "loss", "counted rows", got[1:2], [float(np.count_nonzero(counted))], EXACT, label)
            dLoss = 0.7
            count = np.float32(np.count_nonzero(counted))
            loss_and_count = np.array([total, count], dtype=np.float32)
            probs32 = probs_ref.astype(np.float32)
            # A tenth of what is added, so that both an overwrite and a wrong gradient fail.
            start = self.randn(R, V, scale=0.1 * dLoss / max(float(count), 1.0))
            dLogits = self.up(start)
            op.launch("backward", (R, ceil(V, T)), [dLogits, self.up(probs32), self.up(targets), mask_arg, self.up(loss_and_count), R, F32(dLoss)])
            onehot = np.zeros((R, V))
            onehot[np.arange(R), np.maximum(targets, 0)] = 1.0
            scale = np.float64(np.float32(np.float32(dLoss) / count)) if count > 0 else 0.0
            ref = start + np.where(counted[:, None], scale * (probs32.astype(np.float64) - onehot), 0.0)
            self.check("cross_entropy", "backward", "dLogits (+=)", self.down(dLogits), ref, TOLERANCE, label)
            if "chunkLoss" in op.entries:
                self.cross_entropy_chunks(op, logits, targets, mask_arg, counted, loss_ref, probs_ref, dLoss, label)
        if R == 5:
            none = np.full(R, -1, dtype=np.int32)
            loss = self.up(self.nan(2))
            op.launch("loss", (1,), [loss, self.up(np.zeros(R, dtype=np.float32)), self.up(none), None, R])
            self.check("cross_entropy", "loss", "[0, 0]", self.down(loss), [0.0, 0.0], EXACT, "no row counts")
            start = self.randn(R, V)
            dLogits = self.up(start)
            op.launch("backward", (R, ceil(V, T)), [dLogits, self.up(probs_ref.astype(np.float32)), self.up(none), None, self.up(np.zeros(2, dtype=np.float32)), R, F32(1.0)])
            self.check("cross_entropy", "backward", "dLogits unchanged", self.down(dLogits), start, EXACT, "no row counts")

    def cross_entropy_chunks(self, op, logits, targets, mask_arg, counted, loss_ref, probs_ref, dLoss, label):
        """The fused lm_head's entry points: the call's rows in two chunks (one for a single row), each
        its own [rows, V] logits buffer, the targets, mask and row losses the whole call's from firstRow."""
        V, R = op["VOCAB"], self.rows
        count = np.count_nonzero(counted)
        scale = np.float32(np.float32(dLoss) / np.float32(max(count, 1)))
        onehot = np.zeros((R, V))
        onehot[np.arange(R), np.maximum(targets, 0)] = 1.0
        gradient_ref = np.where(counted[:, None], np.float64(scale) * (probs_ref - onehot), 0.0)
        chunks = [(0, R)] if R == 1 else [(0, R // 2), (R // 2, R - R // 2)]
        to_bits, from_bits = self.activation_bits(op)
        targets_arg = self.up(targets)
        for entry in ("chunkLoss", "chunkGradient", "chunkGradientToActivation"):
            row_loss = self.up(self.nan(R))
            gradient = np.full((R, V), np.nan)
            for first, n in chunks:
                chunk = self.up(logits[first:first + n])
                if entry == "chunkLoss":
                    op.launch(entry, (n,), [chunk, row_loss, targets_arg, mask_arg, first, n])
                elif entry == "chunkGradient":
                    op.launch(entry, (n,), [chunk, row_loss, targets_arg, mask_arg, first, n, F32(scale)])
                    gradient[first:first + n] = self.down(chunk)
                else:
                    out16 = self.up(np.full((n, V), 0x7FC1, dtype=np.uint16))
                    op.launch(entry, (n,), [out16, chunk, row_loss, targets_arg, mask_arg, first, n, F32(scale)])
                    gradient[first:first + n] = from_bits(self.down(out16))
            self.check("cross_entropy", entry, "rowLoss", self.down(row_loss), loss_ref, TOLERANCE, f"{label}, {len(chunks)} chunks")
            if entry == "chunkGradient":
                self.check("cross_entropy", entry, "dLogits (in place)", gradient, gradient_ref, TOLERANCE, f"{label}, {len(chunks)} chunks")
            elif entry == "chunkGradientToActivation":
                # One rounding to 16 bits of each element: at most its unit roundoff (bf16 2^-8, fp16 2^-11) of the largest element.
                tolerance = 5e-3 if op.kernel["kernel"].endswith("bf16") else 1e-3
                self.check("cross_entropy", entry, "dLogits (16-bit)", gradient, gradient_ref, tolerance, f"{label}, {len(chunks)} chunks")

    # -- sum_squares
    def sum_squares(self):
        op = self.ops["sum_squares"]
        n = self.rows * self.arch["dim"] * 3 + 1
        x = self.randn(n)
        results = []
        for _ in range(2):
            partials, total = self.up(self.nan(op["BLOCKS"])), self.up(np.array([1.5], dtype=np.float32))
            op.launch("partials", (op["BLOCKS"],), [partials, self.up(x), n])
            op.launch("finish", (1,), [total, partials])
            results.append(self.down(total))
        ref = 1.5 + float(np.sum(x.astype(np.float64) ** 2))
        self.check("sum_squares", "partials+finish", "sum (+=)", results[0], [ref], 1e-6, f"count {n}")
        self.results.add(self.spec, "sum_squares", "partials+finish", self.rows, "rerun bitwise equal", 0.0 if np.array_equal(results[0].view(np.uint32), results[1].view(np.uint32)) else 1.0, EXACT)

    # -- adamw
    def adamw(self):
        op = self.ops["adamw"]
        n = self.rows * self.arch["dim"] + 3
        grid = (ceil(n, op["THREADS"]),)
        # Values of the update's size (lr), so that an error in the update shows in value's error.
        value, grad = self.randn(n, scale=1e-3), self.randn(n, scale=0.1)
        m0, v0 = self.randn(n, scale=0.01), (self.rng.random(n) * 1e-4).astype(np.float32)
        f = lambda x: float(np.float32(x))
        lr, b1, b2, eps, wd, step = f(1e-3), f(0.9), f(0.999), f(1e-8), f(0.01), 7
        g64 = grad.astype(np.float64)
        squares = np.float32(np.sum(g64 * g64))
        for clipped in (True, False):
            max_norm = f(0.5 * math.sqrt(float(squares))) if clipped else f(1.0)
            clip = min(1.0, max_norm / (math.sqrt(float(squares)) + 1e-6)) if clipped else 1.0
            bufs = [self.up(value), self.up(grad), self.up(m0), self.up(v0)]
            op.launch("step", grid, bufs + [self.up(np.array([squares])) if clipped else None, n, F32(lr), F32(b1), F32(b2), F32(eps), F32(wd), F32(max_norm), step])
            g = g64 * clip
            m = b1 * m0.astype(np.float64) + (1 - b1) * g
            v = b2 * v0.astype(np.float64) + (1 - b2) * g * g
            c1, c2 = 1 - b1 ** step, 1 - b2 ** step
            ref = value.astype(np.float64) * (1 - lr * wd) - lr * (m / c1) / (np.sqrt(v / c2) + eps)
            label = f"clipped by {clip:.3f}" if clipped else "no clipping (null sumSquares)"
            self.check("adamw", "step", "value", self.down(bufs[0]), ref, TOLERANCE, label)
            self.check("adamw", "step", "m", self.down(bufs[2]), m, TOLERANCE, label)
            self.check("adamw", "step", "v", self.down(bufs[3]), v, TOLERANCE, label)


    # -- dropout (only for a spec whose adapters drop)
    def dropout(self):
        if "dropout" not in self.ops:
            return
        op = self.ops["dropout"]
        groups = max(1, self.arch["dim"] // 8)
        n = self.rows * groups + 3  # ragged: not a multiple of the block
        grid = (ceil(n, op["THREADS"]),)
        for seed, offset, p in [(0, 0, 0.05), (0xFFFFFFFF, 2**32 - n // 2, 0.1), (99, 123456789, 0.5), (7, 1000, 0.9)]:
            threshold, kept = dropout_threshold(p), np.float32(1.0 / (1.0 - p))
            out = self.up(self.nan(n))
            op.launch("multipliers", grid, [out, self.up(np.uint32([seed])), offset, threshold, F32(kept), n])
            ref = np.where(dropout_bits(seed, offset, n) >= threshold, kept, np.float32(0)).astype(np.float32)
            self.check("dropout", "multipliers", "multiplier", self.down(out), ref, EXACT, f"seed {seed} offset {offset} p {p}")
        # p exactly a draw's z / 2^32 keeps that entry (the threshold is exact), and no mask writes ones.
        z0 = int(dropout_bits(5, 40, 1)[0])
        out = self.up(self.nan(2))
        op.launch("multipliers", (1,), [out, self.up(np.uint32([5])), 40, dropout_threshold(z0 / 2**32), F32(2.0), 2])
        self.check("dropout", "multipliers", "multiplier (p = z/2^32: kept)", self.down(out)[:1], np.float32([2.0]), EXACT)
        out = self.up(self.nan(n))
        op.launch("multipliers", grid, [out, self.up(np.uint32([0])), 0, 0, F32(1.0), n])
        self.check("dropout", "multipliers", "multiplier (no mask: ones)", self.down(out), np.ones(n, np.float32), EXACT)

    # -- unpool (for a spec whose quantized layers have adapters: the dequantize + cuBLAS path's dx)
    def unpool(self):
        if "unpool" not in self.ops:
            return
        op = self.ops["unpool"]
        R, per_block = self.rows, op["THREADS"] * op["COLUMNS_PER_THREAD"]
        to_bits, from_bits = (to_bf16_bits, from_bf16_bits) if op.kernel["kernel"].endswith("bf16") else (to_f16_bits, from_f16_bits)
        # (columns, group, padding of du's rows): the model's widths at group 8 (float4 rows when
        # columns % 4 == 0), stories260K's down (172 = 4 * 43), K = 35 at group 7 (scalar rows),
        # a padded in_features whose last group is short (170 at 43), several blocks a row at a
        # ragged group (4100 at 1025), and group 1.
        shapes = [(self.arch["dim"], 8, 0), (self.arch["hiddenDim"], 8, 3), (172, 43, 0), (35, 7, 3), (170, 43, 1), (4100, 1025, 2), (9, 1, 0)]
        for columns, group, pad in shapes:
            groups = ceil(columns, group)
            stride = groups + pad
            du = to_bits(self.randn(R, stride, scale=2.0))
            du[:, groups:] = 0x7FC1  # NaN where a row's padding is: read, it poisons dx
            factor = F32(1.0 / group)
            start = self.randn(R, columns)
            columns_group = np.arange(columns) // group
            # No mask (threshold 0, keptScale 1), then a layer's mask at p = 0.3 (entry row·groups + group).
            for seed, offset, p in [(0, 0, None), (77, 2**32 - 5, 0.3)]:
                threshold, kept = (0, np.float32(1)) if p is None else (dropout_threshold(p), np.float32(1.0 / (1.0 - p)))
                multiplier = np.where(dropout_bits(seed, offset, R * groups) >= threshold, kept, np.float32(0)).astype(np.float64).reshape(R, groups)
                out = self.up(start)
                op.launch("accumulate", (R, ceil(columns, per_block)), [out, self.up(du), factor, R, columns, group, stride, self.up(np.uint32([seed])), offset, threshold, F32(kept)])
                term = np.float64(np.float32(factor.value)) * (multiplier * from_bits(du).astype(np.float64)[:, :groups])[:, columns_group]
                note = f"columns {columns}, group {group}, stride {stride}, {'no mask' if p is None else f'p {p}'}"
                self.check("unpool", "accumulate", "inputGrad (+=)", self.down(out), start.astype(np.float64) + term, TOLERANCE, note)
                if "overwrite" in op.entries:
                    # dx starts NaN (a read poisons it); bit for bit accumulate's into zeros.
                    written, zeros = self.up(self.nan(R, columns)), self.up(np.zeros((R, columns), np.float32))
                    for entry, buffer in (("overwrite", written), ("accumulate", zeros)):
                        op.launch(entry, (R, ceil(columns, per_block)), [buffer, self.up(du), factor, R, columns, group, stride, self.up(np.uint32([seed])), offset, threshold, F32(kept)])
                    self.check("unpool", "overwrite", "inputGrad (=)", self.down(written), term, TOLERANCE, note)
                    self.same_floats("unpool", "overwrite", "inputGrad (accumulate's into zeros)", self.down(written), self.down(zeros), note)
            # drop(u) into a dense [R, groups], from u's rows of `stride`, rounded once to 16 bits.
            if "dropPooled" in op.entries:
                seed, offset, p = 5, 1000 + columns, 0.25
                threshold, kept = dropout_threshold(p), np.float32(1.0 / (1.0 - p))
                multiplier = np.where(dropout_bits(seed, offset, R * groups) >= threshold, kept, np.float32(0)).astype(np.float32).reshape(R, groups)
                dropped = self.up(np.full(R * groups, 0xFFFF, np.uint16))
                op.launch("dropPooled", (ceil(R * groups, op["THREADS"]),), [dropped, self.up(du), R, groups, stride, self.up(np.uint32([seed])), offset, threshold, F32(kept)])
                self.same_bits("unpool", "dropPooled", "drop(u) bits", self.down(dropped), to_bits(multiplier * from_bits(du)[:, :groups]), f"columns {columns}, group {group}, stride {stride}, p {p}")

    # -- decode_attention (generation: one new token's attention over the KV cache, GQA)
    def decode_attention(self):
        if "decode_attention" not in self.ops:
            return
        op = self.ops["decode_attention"]
        H, KVH, D, tile = op["HEADS"], op["KV_HEADS"], op["HEAD_SIZE"], op["KEY_TILE"]
        # The token at position rows - 1 of layer 1 in a cache of 2 layers with room to spare:
        # 1 key, a ragged tile, several tiles (37 = one tile and 5 keys, 130, 512). The position
        # comes from the decode step's buffer, int32 [token, position] as the kernels read it.
        layers, length = 2, self.rows
        capacity = length + 3
        keys, values = self.randn(layers, KVH, capacity, D), self.randn(layers, KVH, capacity, D)
        k, v = self.randn(KVH * D), self.randn(KVH * D)
        key_cache, value_cache = self.up(keys), self.up(values)
        step = self.up(np.array([7, length - 1], dtype=np.int32))
        op.launch("append", (ceil(KVH * D, op["APPEND_THREADS"]),), [key_cache, value_cache, self.up(k), self.up(v), step, 1, capacity])
        keys[1, :, length - 1, :], values[1, :, length - 1, :] = k.reshape(KVH, D), v.reshape(KVH, D)
        self.check("decode_attention", "append", "keyCache", self.down(key_cache), keys, EXACT, f"position {length - 1}")
        self.check("decode_attention", "append", "valueCache", self.down(value_cache), values, EXACT, f"position {length - 1}")
        q = self.randn(H * D)
        out = self.up(self.nan(H * D))
        # Scratch: each split's partial, and the heads' arrival counters (0 before, left 0 after).
        splits = op["SPLITS"]
        partials = self.up(self.nan(H * splits * (D + 2)))
        arrivals = self.up(np.zeros(H, dtype=np.int32))
        op.launch("forward", (H, splits), [out, self.up(q), key_cache, value_cache, partials, arrivals, step, 1, capacity])
        first = self.down(out)
        self.check("decode_attention", "forward", "arrivals (left 0)", self.down(arrivals).astype(np.float64), np.zeros(H), EXACT, f"length {length}, {splits} splits")
        op.launch("forward", (H, splits), [out, self.up(q), key_cache, value_cache, partials, arrivals, step, 1, capacity])
        self.same_floats("decode_attention", "forward", "out (a second launch on the same counters)", self.down(out), first)
        ref = np.zeros((H, D))
        for h in range(H):
            kv = h // (H // KVH)
            scores = keys[1, kv, :length].astype(np.float64) @ q[h * D:(h + 1) * D].astype(np.float64) / math.sqrt(D)
            p = np.exp(scores - scores.max())
            ref[h] = (p / p.sum()) @ values[1, kv, :length].astype(np.float64)
        # Positions past `length` (and layer 0) hold other values: they must not enter.
        self.check("decode_attention", "forward", "out", self.down(out), ref, TOLERANCE, f"length {length} ({splits} splits, tiles of {tile})")


CASES = ["embedding", "rmsnorm", "convert", "rope", "swiglu", "residual", "lm_head", "cross_entropy", "sum_squares", "adamw", "dropout", "unpool", "decode_attention"]


def determinism(device, results, spec, arch, ops):
    """The reductions again on the same inputs: bitwise the same outputs."""
    rng = np.random.default_rng(7)
    R = 130
    op = ops["lm_head"]
    C, V, tile = op["CHANNELS"], op["VOCAB"], op["TILE"]
    x, W = device.upload(rng.standard_normal((R, C), dtype=np.float32)), device.upload(rng.standard_normal((V, C), dtype=np.float32))
    outs = []
    for _ in range(2):
        logits = device.upload(np.zeros((R, V), dtype=np.float32))
        op.launch("forward", (ceil(V, tile), ceil(R, tile)), [logits, x, W, R])
        outs.append(device.download(logits))
    results.add(spec, "lm_head", "forward", R, "rerun bitwise equal", 0.0 if np.array_equal(outs[0].view(np.uint32), outs[1].view(np.uint32)) else 1.0, EXACT)
    op = ops["cross_entropy"]
    logits = device.upload(rng.standard_normal((R, V), dtype=np.float32) * np.float32(3))
    targets = device.upload(rng.integers(0, V, R).astype(np.int32))
    outs = []
    for _ in range(2):
        probs, row_loss, loss = device.upload(np.zeros((R, V), np.float32)), device.upload(np.zeros(R, np.float32)), device.upload(np.zeros(2, np.float32))
        op.launch("forward", (R,), [probs, row_loss, logits, targets, None, R])
        op.launch("loss", (1,), [loss, row_loss, targets, None, R])
        outs.append(np.concatenate([device.download(probs).ravel(), device.download(loss)]))
    results.add(spec, "cross_entropy", "forward+loss", R, "rerun bitwise equal", 0.0 if np.array_equal(outs[0].view(np.uint32), outs[1].view(np.uint32)) else 1.0, EXACT)


# ---------------------------------------------------------------------------------------------
# Timing: CUDA events around REPEATS launches of each entry point at the largest shapes.

def milliseconds(device, once, repeats=20):
    """Mean time of one call of `once` (its launches), by CUDA events around `repeats` calls after 3 warm-up ones."""
    for _ in range(3):
        once()
    device.synchronize()
    start, end = device.timer()
    start.record()
    for _ in range(repeats):
        once()
    end.record()
    device.synchronize()
    return start.elapsed_time(end) / repeats


def timings(device, spec, arch, ops, rows, repeats=20):
    rng = np.random.default_rng(3)
    z = lambda *shape: device.upload(np.zeros(shape, dtype=np.float32))
    r = lambda *shape: device.upload(rng.standard_normal(shape, dtype=np.float32))
    C, H, V = arch["dim"], arch["hiddenDim"], arch["vocab"]
    hs = C // arch["heads"]
    seq = 128 if rows % 128 == 0 else rows
    lm, ce, rms, rope, sw, res, cv, ss, aw = (ops[k] for k in ["lm_head", "cross_entropy", "rmsnorm", "rope", "swiglu", "residual", "convert", "sum_squares", "adamw"])
    x, W, logits, probs = r(rows, C), r(V, C), r(rows, V), z(rows, V)
    targets = device.upload(rng.integers(0, V, rows).astype(np.int32))
    cos, sin = r(seq, hs // 2), r(seq, hs // 2)
    count = rows * H
    adapter = 8 * 1024 * 1024  # a LLaMA-7B rank-64-ish adapter's parameter count, for adamw and sum_squares
    stride = C + (-C) % 64
    cases = [
        # (label, op, entry, grid, args, bytes moved, flops)
        ("lm_head forward", lm, "forward", (ceil(V, lm["TILE"]), ceil(rows, lm["TILE"])), [logits, x, W, rows], 4 * (rows * C + V * C + rows * V), 2 * rows * V * C),
        ("lm_head backward", lm, "backward", (ceil(C, lm["TILE"]), ceil(rows, lm["TILE"])), [x, logits, W, rows], 4 * (rows * C * 2 + V * C + rows * V), 2 * rows * V * C),
        ("cross_entropy forward", ce, "forward", (rows,), [probs, z(rows), logits, targets, None, rows], 4 * 2 * rows * V, 0),
        ("cross_entropy backward", ce, "backward", (rows, ceil(V, ce["THREADS"])), [logits, probs, targets, None, device.upload(np.array([1.0, rows], np.float32)), rows, F32(1.0)], 4 * 3 * rows * V, 0),
        ("rmsnorm forward", rms, "forward", (ceil(rows, rms["ROWS_PER_BLOCK"]),), [z(rows, C), z(rows), x, r(C), rows], 4 * 2 * rows * C, 0),
        ("rmsnorm backward", rms, "backward", (ceil(rows, rms["ROWS_PER_BLOCK"]),), [z(rows, C), r(rows, C), x, r(C), r(rows), rows], 4 * 4 * rows * C, 0),
        ("rope forward (q)", rope, "forward", (ceil(rows * C // 2, rope["THREADS"]),), [r(rows, C), cos, sin, rows, seq, C], 4 * 2 * rows * C, 0),
        ("swiglu forward", sw, "forward", (ceil(count, sw["THREADS"]),), [z(count), r(count), r(count), count], 4 * 3 * count, 0),
        ("swiglu backward", sw, "backward", (ceil(count, sw["THREADS"]),), [z(count), z(count), r(count), r(count), r(count), count], 4 * 7 * count, 0),
        ("residual add", res, "add", (ceil(rows * C, res["THREADS"]),), [z(rows * C), x, x, rows * C], 4 * 3 * rows * C, 0),
        ("convert toActivation", cv, "toActivation", (rows, ceil(stride, cv["THREADS"])), [device.upload(np.zeros(rows * stride, np.uint16)), x, rows, C, stride], 4 * rows * C + 2 * rows * stride, 0),
        ("sum_squares partials+finish", ss, None, None, None, 4 * adapter, 0),
        ("adamw step", aw, "step", (ceil(adapter, aw["THREADS"]),), [z(adapter), z(adapter), z(adapter), z(adapter), None, adapter, F32(1e-3), F32(0.9), F32(0.999), F32(1e-8), F32(0.0), F32(1.0), 1], 4 * 7 * adapter, 0),
    ]
    # The entry points at a linear layer, on 16-bit activations (each saves the conversions around it).
    h = lambda *shape: device.upload(np.zeros(shape, dtype=np.uint16))
    boundary = [
        ("rmsnorm forward, 16-bit out", rms, "forwardToActivation", (ceil(rows, rms["ROWS_PER_BLOCK"]),), [h(rows, C), z(rows), x, r(C), rows], (4 + 2) * rows * C, 0),
        ("rope forward (q), 16-bit in", rope, "forwardFromActivation", (ceil(rows * C // 2, rope["THREADS"]),), [z(rows, C), h(rows, C), cos, sin, rows, seq, C], (2 + 4) * rows * C, 0),
        ("swiglu forward, 16-bit", sw, "forwardInActivation", (ceil(count, sw["THREADS"]),), [h(count), h(count), h(count), count], 2 * 3 * count, 0),
        ("swiglu backward, 16-bit gate/up", sw, "backwardFromActivation", (ceil(count, sw["THREADS"]),), [z(count), z(count), r(count), h(count), h(count), count], (4 * 5 + 2 * 2) * count, 0),
        ("residual add, 16-bit b", res, "addFromActivation", (ceil(rows * C, res["THREADS"]),), [z(rows * C), x, h(rows * C), rows * C], (4 * 2 + 2) * rows * C, 0),
        # Into gradients known to hold zeros (each saves a memset, the 16-bit ones a conversion too).
        ("rmsnorm backward, dx written", rms, "backwardOverwrite", (ceil(rows, rms["ROWS_PER_BLOCK"]),), [z(rows, C), r(rows, C), x, r(C), r(rows), rows], 4 * 3 * rows * C, 0),
        ("rope backward (q), 16-bit out", rope, "backwardToActivation", (ceil(rows * C // 2, rope["THREADS"]),), [h(rows, C), r(rows, C), cos, sin, rows, seq, C], (4 + 2) * rows * C, 0),
        ("swiglu backward, 16-bit in and out", sw, "backwardToActivation", (ceil(count, sw["THREADS"]),), [h(count), h(count), r(count), h(count), h(count), count], (4 + 2 * 4) * count, 0),
    ]
    cases += [case for case in boundary if case[2] in case[1].entries]
    if "dropout" in ops:  # one layer's multipliers at group 32: rows × C/32
        dp, entries = ops["dropout"], rows * (C // 32)
        cases.append(("dropout multipliers (one layer)", dp, "multipliers", (ceil(entries, dp["THREADS"]),), [z(entries), device.upload(np.uint32([1])), 2, dropout_threshold(0.05), F32(1 / 0.95), entries], 4 * entries, 0))
    if "unpool" in ops:  # the MLP down projection's dx += c·unpool(du) at group 32 (LLaMA-7B: K = 11008, L = 344)
        up_, groups = ops["unpool"], H // 32
        du = device.upload(np.zeros(rows * groups, np.uint16))
        mask = [device.upload(np.uint32([1])), 2, dropout_threshold(0.05), F32(1 / 0.95)]
        cases.append(("unpool accumulate (down, group 32, dropout)", up_, "accumulate", (rows, ceil(H, up_["THREADS"] * up_["COLUMNS_PER_THREAD"])), [z(rows, H), du, F32(1 / 32), rows, H, 32, groups] + mask, 8 * rows * H + 2 * rows * groups, 0))
        if "overwrite" in up_.entries:
            cases.append(("unpool overwrite (down, group 32, dropout)", up_, "overwrite", (rows, ceil(H, up_["THREADS"] * up_["COLUMNS_PER_THREAD"])), [z(rows, H), du, F32(1 / 32), rows, H, 32, groups] + mask, 4 * rows * H + 2 * rows * groups, 0))
        cases.append(("unpool dropPooled (down, group 32)", up_, "dropPooled", (ceil(rows * groups, up_["THREADS"]),), [device.upload(np.zeros(rows * groups, np.uint16)), du, rows, groups, groups] + mask, 4 * rows * groups, 0))
    squares_in, partials, total = z(adapter), z(ss["BLOCKS"]), z(1)
    lines = []
    for label, op, entry, grid, args, moved, flops in cases:
        def once(op=op, entry=entry, grid=grid, args=args):
            if entry is None:
                op.launch("partials", (ss["BLOCKS"],), [partials, squares_in, adapter])
                op.launch("finish", (1,), [total, partials])
            else:
                op.launch(entry, grid, args)
        ms = milliseconds(device, once, repeats)
        rate = f"{moved / ms / 1e6:.0f} GB/s" + (f", {flops / ms / 1e9:.1f} TFLOP/s" if flops else "")
        lines.append(f"| {spec} | {label} | {rows if 'adamw' not in label and 'sum_squares' not in label else adapter} | {ms * 1000:.1f} | {rate} |")
        print(lines[-1], flush=True)
    # torch's float32 matmul for the same lm_head shape (no TF32), for scale.
    torch = device.torch
    torch.backends.cuda.matmul.allow_tf32 = False
    tx, tW = x.handle.view(rows, C), W.handle.view(V, C)
    ms = milliseconds(device, lambda: torch.matmul(tx, tW.t()), repeats)
    lines.append(f"| {spec} | torch.matmul float32 (no TF32), lm_head's shape | {rows} | {ms * 1000:.1f} | {2 * rows * V * C / ms / 1e9:.1f} TFLOP/s |")
    print(lines[-1], flush=True)
    return lines


def variants(device, results, kernels_dir, variants_dir, timing_rows):
    """The lm_head tunings emit-lm-head-variants.ts built: each checked at 130 and 512 rows and timed."""
    lines = []
    inputs = {}
    for spec in sorted(os.listdir(variants_dir)):
        folder = os.path.join(kernels_dir, spec)
        manifest = json.load(open(os.path.join(folder, "manifest.json")))
        arch = json.load(open(os.path.join(folder, "architecture.json")))
        entry = next(e for e in manifest["modelOps"] if e["op"] == "lm_head")
        for label in sorted(os.listdir(os.path.join(variants_dir, spec))):
            op = Op(device, folder, entry)
            op.fatbin = os.path.join(variants_dir, spec, label, entry["kernel"] + ".sm_90a.fatbin")
            for rows in (130, 512):
                try:
                    Case(device, results, f"{spec} [lm_head {label}]", arch, {"lm_head": op}, rows).lm_head()
                except Exception as error:
                    results.failure(f"{spec} [lm_head {label}]", "lm_head", rows, f"{type(error).__name__}: {error}")
                    traceback.print_exc()
            if device.name != "gpu":
                continue
            C, V, tile = arch["dim"], arch["vocab"], op["TILE"]
            for rows in timing_rows:
                if (spec, rows) not in inputs:
                    rng = np.random.default_rng(5)
                    inputs[(spec, rows)] = [device.upload(rng.standard_normal(shape, dtype=np.float32)) for shape in ((rows, C), (V, C), (rows, V))]
                x, W, logits = inputs[(spec, rows)]
                forward = milliseconds(device, lambda: op.launch("forward", (ceil(V, tile), ceil(rows, tile)), [logits, x, W, rows]))
                backward = milliseconds(device, lambda: op.launch("backward", (ceil(C, tile), ceil(rows, tile)), [x, logits, W, rows]))
                flops = 2 * rows * V * C
                lines.append(f"| {spec} | lm_head {label} | {rows} | {forward * 1000:.1f} ({flops / forward / 1e9:.1f} TFLOP/s) | {backward * 1000:.1f} ({flops / backward / 1e9:.1f} TFLOP/s) |")
                print(lines[-1], flush=True)
    return lines


def write_reports(out, device, results, timing_lines, variant_lines, started):
    """ops.md and results.json as far as the run got (rewritten after each spec: a run cut short keeps them)."""
    failed = [r for r in results.rows if not r["ok"]]
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"rows": results.rows, "timings": timing_lines, "variants": variant_lines}, f, indent=1, default=float)
    with open(os.path.join(out, "ops.md"), "w") as f:
        f.write(f"# CUDA model ops against float64 ({device.name})\n\n")
        f.write(f"{len(results.rows)} checks, {len(failed)} failed, {time.time() - started:.0f} s. Error: max-norm relative, max|got - ref| / max|ref| "
                "(for the bit-exact conversion, the number of differing elements).\n\n")
        # One line per (spec, op, entry, output): the worst error over the row counts.
        worst = {}
        for r in results.rows:
            key = (r["spec"], r["op"], r["entry"], r["output"])
            w = worst.setdefault(key, {"error": 0.0, "tolerance": r["tolerance"], "rows": [], "ok": True})
            w["error"] = max(w["error"], r["error"])
            w["rows"].append(r["rows"])
            w["ok"] = w["ok"] and r["ok"]
        f.write("| spec | op | entry | output | rows | worst error | tolerance | |\n|---|---|---|---|---|---|---|---|\n")
        for (spec, op, entry, output), w in worst.items():
            rows = ", ".join(str(x) for x in sorted(set(w["rows"])))
            f.write(f"| {spec} | {op} | {entry} | {output} | {rows} | {w['error']:.2e} | {w['tolerance']:.0e} | {'ok' if w['ok'] else '**FAIL**'} |\n")
        if failed:
            f.write("\n## Failures\n\n")
            for r in failed:
                f.write(f"- {r['spec']} {r['op']}.{r['entry']} rows={r['rows']} {r['output']}: {r['error']} {r['note']}\n")
        if timing_lines:
            f.write("\n## Timings (CUDA events, mean of 20 launches after 3 warm-up)\n\n| spec | kernel | rows (elements) | us | rate |\n|---|---|---|---|---|\n")
            f.write("\n".join(timing_lines) + "\n")
        if variant_lines:
            f.write("\n## lm_head tunings (emit-lm-head-variants.ts): us forward, us backward\n\n| spec | tuning | rows | forward | backward |\n|---|---|---|---|---|\n")
            f.write("\n".join(variant_lines) + "\n")
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernels", required=True, help="the folder emit-op-kernels.ts wrote (one compile folder per spec)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--smoke", action="store_true", help="no GPU: run the plumbing only (every comparison then fails)")
    parser.add_argument("--emulate", action="store_true", help="no GPU: run the kernels' source on the CPU stand-in (emulate/), small specs and rows up to 130")
    parser.add_argument("--timing-rows", type=int, nargs="*", default=[512, 4096])
    parser.add_argument("--variants", help="the folder emit-lm-head-variants.ts wrote: lm_head tunings to check and time")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    device = Smoke() if args.smoke else Emulator() if args.emulate else Gpu()
    global ROWS
    if args.emulate:
        ROWS = [r for r in ROWS if r <= 130]
    results = Results()
    timing_lines = []
    started = time.time()
    # The small specs first, LLaMA-7B's last, then its timings, then the lm_head tunings: a run cut
    # short keeps the reports of what it finished.
    specs = sorted((s for s in os.listdir(args.kernels) if os.path.isfile(os.path.join(args.kernels, s, "manifest.json"))), key=lambda s: (s.startswith("llama"), s))
    if args.emulate:
        specs = [s for s in specs if not s.startswith("llama")]  # LLaMA-7B's shapes would take the CPU an hour
    loaded = {}
    for spec in specs:
        folder = os.path.join(args.kernels, spec)
        manifest = json.load(open(os.path.join(folder, "manifest.json")))
        arch = json.load(open(os.path.join(folder, "architecture.json")))
        ops = {entry["op"]: Op(device, folder, entry) for entry in manifest["modelOps"] if entry["op"] != "attention"}
        loaded[spec] = (arch, ops)
        print(f"== {spec}: {', '.join(o.kernel['kernel'] for o in ops.values())}", flush=True)
        for rows in ROWS:
            case = Case(device, results, spec, arch, ops, rows)
            for name in ONLY or CASES:
                try:
                    getattr(case, name)()
                except Exception as error:  # one broken case must not hide the others
                    results.failure(spec, name, rows, f"{type(error).__name__}: {error}")
                    traceback.print_exc()
        try:
            determinism(device, results, spec, arch, ops)
        except Exception as error:
            results.failure(spec, "determinism", 130, f"{type(error).__name__}: {error}")
            traceback.print_exc()
        write_reports(args.out, device, results, timing_lines, [], started)
    for spec in specs:
        if args.smoke or args.emulate or QUICK or not spec.startswith("llama"):
            continue
        arch, ops = loaded[spec]
        for rows in args.timing_rows:
            try:
                timing_lines += timings(device, spec, arch, ops, rows)
            except Exception as error:
                print(f"timing {spec} rows={rows} failed: {type(error).__name__}: {error}", flush=True)
                traceback.print_exc()
            write_reports(args.out, device, results, timing_lines, [], started)
    variant_lines = []
    if args.variants and not QUICK:
        try:
            variant_lines = variants(device, results, args.kernels, args.variants, args.timing_rows)
        except Exception as error:
            results.failure("variants", "lm_head", 0, f"{type(error).__name__}: {error}")
            traceback.print_exc()
    failed = write_reports(args.out, device, results, timing_lines, variant_lines, started)
    print(f"{len(results.rows) - len(failed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
