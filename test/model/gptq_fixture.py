#!/usr/bin/env python3
"""GPTQ v1 checkpoints for qalc's tests, written independently of qalc's TypeScript.

    gptq_fixture.py make HF_DIR OUT_DIR --bits B --group G [--sym] [--modules attn|all]
                         [--config-only] [--desc-act]
    gptq_fixture.py decode GPTQ_DIR OUT.safetensors

`make` quantizes a Hugging Face LLaMA directory (stories260K-hf) the way GPTQ's min-max
quantizer does (no Hessian: RTN; zeros of 0, which v1 cannot store, raised to 1), packs it exactly as AutoGPTQ's QuantLinear.pack() does
(auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py: intweight recomputed against the fp16 scales,
the 2/4/8-bit and the 3-bit word loops, zeros stored minus one) and writes an AutoGPTQ
directory: model.safetensors with qweight/qzeros/scales/g_idx per quantized linear layer and
every other tensor as it was, config.json with quantization_config, quantize_config.json, the
tokenizer files. Beside it, expected.safetensors holds what a reader must find: per layer the
codes (U8 [K, N]), the zeros z (I32 [L, N], not minus one) and the fp16 scales widened (F32).

`decode` reads a GPTQ directory the way AutoGPTQ's forward unpacks it (shifts by wf, masks,
zeros plus one — none for GPTQModel's gptq_v2 — scales[g_idx] * (w - zeros[g_idx])) and writes every quantized layer's dequantized
weight, [out, in] float32 as an nn.Linear holds it, under `<prefix>.weight`.

Only numpy and the standard library: CI has nothing else.
"""
import argparse
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = {'F32': np.float32, 'F16': np.float16, 'I32': np.int32, 'U8': np.uint8, 'BF16': None}
ATTENTION = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj']
MLP = ['mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj']


def read_safetensors(path):
    data = Path(path).read_bytes()
    (n,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + n])
    header.pop('__metadata__', None)
    base = 8 + n
    out = {}
    for name, e in header.items():
        start, end = e['data_offsets']
        out[name] = np.frombuffer(data[base + start:base + end], dtype=DTYPES[e['dtype']]).reshape(e['shape']).copy()
    return out


def write_safetensors(path, tensors):
    names = {np.dtype(np.float32): 'F32', np.dtype(np.float16): 'F16', np.dtype(np.int32): 'I32', np.dtype(np.uint8): 'U8'}
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array).tobytes()
        header[name] = {'dtype': names[array.dtype], 'shape': list(array.shape), 'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b' ' * ((8 - len(text) % 8) % 8)
    Path(path).write_bytes(struct.pack('<Q', len(text)) + text + b''.join(blobs))


def find_params(w, bits, sym):
    """GPTQ's Quantizer.find_params for rows of w ([rows, g]): per-row scale and zero."""
    maxq = 2 ** bits - 1
    xmin = np.minimum(w.min(axis=1), 0)
    xmax = np.maximum(w.max(axis=1), 0)
    if sym:
        xmax = np.maximum(np.abs(xmin), xmax)
        xmin = np.where(xmin < 0, -xmax, xmin)
    both_zero = (xmin == 0) & (xmax == 0)
    xmin = np.where(both_zero, -1, xmin)
    xmax = np.where(both_zero, 1, xmax)
    scale = (xmax - xmin) / maxq
    zero = np.full_like(scale, (maxq + 1) / 2) if sym else np.round(-xmin / scale)
    # A v1 file stores z − 1, so z = 0 (a group with no negative weight, or almost none) has no
    # encoding: AutoGPTQ would write −1 and corrupt the whole word. The fixture raises it to 1.
    return scale, np.maximum(zero, 1)


def quantize_layer(weight, bits, group, sym):
    """weight [N, K] float32 (nn.Linear) → (Q dequantized [N, K], scales [L, N], zeros [L, N])."""
    n, k = weight.shape
    g = k if group == -1 else group
    maxq = 2 ** bits - 1
    w = weight.astype(np.float32)
    q_deq = np.zeros_like(w)
    scales, zeros = [], []
    for first in range(0, k, g):
        block = w[:, first:first + g]
        scale, zero = find_params(block, bits, sym)
        scale = scale.astype(np.float32)
        zero = zero.astype(np.float32)
        q = np.clip(np.round(block / scale[:, None]) + zero[:, None], 0, maxq)
        q_deq[:, first:first + g] = scale[:, None] * (q - zero[:, None])
        scales.append(scale)
        zeros.append(zero)
    return q_deq, np.stack(scales), np.stack(zeros)


def pack_rows(intweight, bits):
    """AutoGPTQ's qweight loop: intweight uint32 [K, N] → qweight [K // 32 * bits, N]."""
    qweight = np.zeros((intweight.shape[0] // 32 * bits, intweight.shape[1]), dtype=np.uint32)
    i = 0
    row = 0
    while row < qweight.shape[0]:
        if bits in [2, 4, 8]:
            for j in range(i, i + (32 // bits)):
                qweight[row] |= intweight[j] << (bits * (j - i))
            i += 32 // bits
            row += 1
        elif bits == 3:
            for j in range(i, i + 10):
                qweight[row] |= intweight[j] << (3 * (j - i))
            i += 10
            qweight[row] |= intweight[i] << 30
            row += 1
            qweight[row] |= (intweight[i] >> 2) & 1
            i += 1
            for j in range(i, i + 10):
                qweight[row] |= intweight[j] << (3 * (j - i) + 1)
            i += 10
            qweight[row] |= intweight[i] << 31
            row += 1
            qweight[row] |= (intweight[i] >> 1) & 0x3
            i += 1
            for j in range(i, i + 10):
                qweight[row] |= intweight[j] << (3 * (j - i) + 2)
            i += 10
            row += 1
    return qweight


def pack_layer(q_deq, scales, zeros, bits, group):
    """AutoGPTQ's QuantLinear.pack(): returns qweight, qzeros, scales fp16, g_idx and the codes."""
    n, k = q_deq.shape
    g = k if group == -1 else group
    assert (k * bits) % 32 == 0 and (n * bits) % 32 == 0, f'AutoGPTQ cannot pack K={k}, N={n} at {bits} bits'
    g_idx = np.array([i // g for i in range(k)], dtype=np.int32)
    scales_t = scales.T  # [N, L] as pack() receives them
    zeros_t = zeros.T
    scale_zeros = zeros_t * scales_t
    half = scales_t.astype(np.float16)
    intweight = np.stack([np.round((q_deq[:, i] + scale_zeros[:, g_idx[i]]) / half[:, g_idx[i]].astype(np.float32)) for i in range(k)], axis=1)
    intweight = intweight.T.astype(np.int64)  # [K, N]
    assert intweight.min() >= 0 and intweight.max() <= 2 ** bits - 1, 'a recomputed code falls outside the range (AutoGPTQ would corrupt it)'
    qweight = pack_rows(intweight.astype(np.uint32), bits).astype(np.int32)
    stored = zeros - 1  # [L, N], v1 stores z − 1
    assert stored.min() >= 0, 'a zero of 0 would be stored as −1 and wrap (AutoGPTQ v1 corrupts it): choose other bits or --sym'
    qzeros = pack_rows(stored.astype(np.uint32).T.copy(), bits).T.copy().astype(np.int32)  # packed along N
    return qweight, qzeros, half.T.copy(), g_idx, intweight.astype(np.uint8)


def make(args):
    src, out = Path(args.hf_dir), Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((src / 'config.json').read_text())
    weights = read_safetensors(src / 'model.safetensors')
    modules = ATTENTION + (MLP if args.modules == 'all' else [])
    tensors, expected = {}, {}
    for name, array in weights.items():
        prefix = name[:-len('.weight')] if name.endswith('.weight') else None
        if prefix is None or not any(prefix.endswith(m) for m in modules) or '.layers.' not in prefix:
            tensors[name] = array
            continue
        q_deq, scales, zeros = quantize_layer(array, args.bits, args.group, args.sym)
        qweight, qzeros, half, g_idx, codes = pack_layer(q_deq, scales, zeros, args.bits, args.group)
        if args.desc_act:
            g_idx = np.random.default_rng(0).permutation(g_idx).astype(np.int32)
        tensors[f'{prefix}.qweight'] = qweight
        tensors[f'{prefix}.qzeros'] = qzeros
        tensors[f'{prefix}.scales'] = half
        tensors[f'{prefix}.g_idx'] = g_idx
        expected[f'{prefix}.codes'] = codes
        expected[f'{prefix}.zeros'] = zeros.astype(np.int32)
        expected[f'{prefix}.scales'] = half.astype(np.float32)
    write_safetensors(out / 'model.safetensors', tensors)
    write_safetensors(out / 'expected.safetensors', expected)
    quantize_config = {
        'bits': args.bits, 'group_size': args.group, 'damp_percent': 0.01, 'desc_act': args.desc_act,
        'static_groups': False, 'sym': args.sym, 'true_sequential': True, 'model_name_or_path': None,
        'model_file_base_name': 'model', 'quant_method': 'gptq', 'checkpoint_format': 'gptq',
    }
    if args.modules != 'all':
        quantize_config['modules_in_block_to_quantize'] = [ATTENTION[:3], ATTENTION[3:]]
    config['quantization_config'] = quantize_config
    (out / 'config.json').write_text(json.dumps(config, indent=2))
    if not args.config_only:
        (out / 'quantize_config.json').write_text(json.dumps(quantize_config, indent=2))
    for name in ['tokenizer.json', 'tokenizer.model', 'tokenizer_config.json', 'generation_config.json']:
        if (src / name).exists():
            shutil.copyfile(src / name, out / name)


def unpack(words, bits, axis_length):
    """AutoGPTQ's forward: shifts by wf = [0, b, 2b, …] within each word (3 bits: its three-word dance)."""
    if bits in [2, 4, 8]:
        wf = np.arange(0, 32, bits, dtype=np.uint32)
        values = (words.astype(np.uint32)[:, None, :] >> wf[None, :, None]) & (2 ** bits - 1)
        return values.reshape(-1, words.shape[1])[:axis_length]
    # 3 bits, AutoGPTQ's forward line by line: each word triple shifted by its row of wf, codes
    # 10 and 21 mended from the bits that spilled into the next word.
    w = words.astype(np.uint32).reshape(-1, 3, 1, words.shape[1]).repeat(12, axis=2)
    wf = np.array([[0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 0],
                   [0, 1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31],
                   [0, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 0]], dtype=np.uint32)
    w = (w >> wf[None, :, :, None]) & 0x7
    w[:, 0, 10] = (w[:, 0, 10] & 0x3) | ((w[:, 1, 0] << 2) & 0x4)
    w[:, 1, 11] = (w[:, 1, 11] & 0x1) | ((w[:, 2, 0] << 1) & 0x6)
    w = w & 0x7
    codes = np.concatenate([w[:, 0, :11], w[:, 1, 1:12], w[:, 2, 1:11]], axis=1)
    return codes.reshape(-1, words.shape[1])[:axis_length]


def decode(args):
    directory = Path(args.gptq_dir)
    config = json.loads((directory / 'config.json').read_text())
    q = config['quantization_config']
    bits = q['bits']
    assert not q['desc_act']
    # v1 (AutoGPTQ) stores z − 1; GPTQModel's gptq_v2 stores z.
    zero_offset = {'gptq': 1, 'gptq_v2': 0}[q.get('checkpoint_format', 'gptq')]
    tensors = {}
    files = sorted(directory.glob('*.safetensors'))
    for file in files:
        tensors.update(read_safetensors(file))
    out = {}
    for name in tensors:
        if not name.endswith('.qweight'):
            continue
        prefix = name[:-len('.qweight')]
        qweight, qzeros, scales, g_idx = (tensors[f'{prefix}.{t}'] for t in ['qweight', 'qzeros', 'scales', 'g_idx'])
        k, n = g_idx.shape[0], qweight.shape[1]
        codes = unpack(qweight, bits, k).astype(np.float32)  # [K, N]
        zeros = unpack(qzeros.T.copy(), bits, n).T.astype(np.float32) + zero_offset  # [L, N]
        weight = scales.astype(np.float32)[g_idx] * (codes - zeros[g_idx])
        out[f'{prefix}.weight'] = weight.T.copy()
    write_safetensors(args.out, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    m = sub.add_parser('make')
    m.add_argument('hf_dir')
    m.add_argument('out_dir')
    m.add_argument('--bits', type=int, required=True, choices=[2, 3, 4, 8])
    m.add_argument('--group', type=int, required=True)
    m.add_argument('--sym', action='store_true')
    m.add_argument('--modules', choices=['attn', 'all'], default='attn')
    m.add_argument('--config-only', action='store_true', help='quantization_config in config.json only')
    m.add_argument('--desc-act', action='store_true', help='mark desc_act true and permute g_idx')
    d = sub.add_parser('decode')
    d.add_argument('gptq_dir')
    d.add_argument('out')
    args = parser.parse_args()
    make(args) if args.command == 'make' else decode(args)


if __name__ == '__main__':
    sys.exit(main())
