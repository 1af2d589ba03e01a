// The CUDA attention kernel's description and rendered source: names from numbers, the entry
// points the runtime launches (parameters in launch order, block, shared memory, grid), refusals,
// determinism, and a golden file of the stories260K kernel (head size 8, padded to 16 inside, GQA 2;
// review its diff like code, regenerate with UPDATE_GOLDEN=1). The device check is
// test/backends/cuda/h200/ops/check_attention.py; nvcc compiles are in attention.nvcc.slow.test.ts.
import { describe, expect, it } from 'vitest';
import { attentionGrid, attentionKernel, attentionTiling, renderAttentionKernel } from '../../../../src/backends/cuda/model-ops/attention.ts';
import { frontEnd } from '../../../../src/compile.ts';
import { expectGolden } from '../../../support/golden.ts';

const plan = frontEnd('examples/stories260k.qal').plan!;

describe('CUDA attention kernel', () => {
  it('names the stories260K kernel from its numbers and renders the golden file', () => {
    // stories260K: dim 64, 8 heads of 8, 4 kv heads (a GQA ratio of 2), bf16 activations.
    const kernel = attentionKernel({ ...plan.model.architecture, activation: 'bf16' });
    expect(kernel.kernel).toBe('attention_h8_kv4_d8_bf16');
    expect(kernel.constants).toMatchObject({ HEAD_SIZE: 8, HEAD_PAD: 16, HEADS: 8, KV_HEADS: 4, IO_BF16: 1 });
    const rendered = renderAttentionKernel(kernel, plan);
    expect(rendered.fileName).toBe('attention_h8_kv4_d8_bf16.cu');
    expectGolden('generated/stories260k/cuda/ops/attention_h8_kv4_d8_bf16.cu', rendered.source);
  });

  it('reads and writes bf16 rows with bf16 activations, float32 rows with fp16 or float32 ones; dq, dk, dv, lse and delta float32 always', () => {
    const cTypes = (activation: string) => Object.fromEntries(attentionKernel({ dim: 512, heads: 8, kvHeads: 2, activation }).entryPoints
      .flatMap((e) => e.parameters.filter((p) => p.type === 'pointer').map((p) => [`${e.name}.${p.name}`, p.cType])));
    const bf16 = cTypes('bf16');
    for (const name of ['forward.q', 'forward.k', 'forward.v', 'backward_delta.dOut', 'backward_delta.out', 'backward_dq.dOut', 'backward_dkdv.v']) expect(bf16[name], name).toBe('const __nv_bfloat16*');
    expect(bf16['forward.out']).toBe('__nv_bfloat16*');
    for (const name of ['forward.lse', 'backward_dq.dq', 'backward_dkdv.dk', 'backward_dkdv.dv', 'backward_delta.delta']) expect(bf16[name], name).toBe('float*');
    for (const activation of ['f16', 'f32', undefined]) {
      const kernel = attentionKernel({ dim: 512, heads: 8, kvHeads: 2, ...(activation ? { activation } : {}) });
      expect(kernel.kernel).toBe('attention_h8_kv2_d64_f32');
      expect(kernel.constants['IO_BF16']).toBe(0);
    }
    expect(Object.values(cTypes('f16')).every((t) => t === 'float*' || t === 'const float*')).toBe(true);
    const { source } = renderAttentionKernel(attentionKernel({ dim: 512, heads: 8, kvHeads: 2, activation: 'bf16' }), { spec: 'x', specFile: 'x.qal' });
    expect(source).toContain('typedef bf16 io_t;');
    expect(source).toContain('constexpr bool IO_BF16 = true;');
  });

  it('lists the entry points in launch order with every parameter of their extern "C" kernels', () => {
    const kernel = attentionKernel({ dim: 4096, heads: 32, kvHeads: 8 });
    expect(kernel.kernel).toBe('attention_h32_kv8_d128_f32');
    expect(kernel.entryPoints.map((e) => e.name)).toEqual(['forward', 'backward_delta', 'backward_dq', 'backward_dkdv']);
    const { source } = renderAttentionKernel(kernel, { spec: 'x', specFile: 'x.qal' });
    for (const entry of kernel.entryPoints) {
      // The kernel's C parameters, by name, in order, match the description's.
      const signature = new RegExp(`${entry.symbol}\\(([^)]*)\\)`).exec(source.slice(source.indexOf('extern "C" __global__')))![1]!;
      const names = signature.split(',').map((p) => p.trim().split(/\s+/).pop()!);
      expect(names, entry.symbol).toEqual(entry.parameters.map((p) => p.name));
      const types = signature.split(',').map((p) => (p.includes('*') ? 'pointer' : 'u32'));
      expect(types, entry.symbol).toEqual(entry.parameters.map((p) => p.type));
      expect(source, `the header documents ${entry.name}`).toContain(`//   ${entry.name}: ${entry.symbol}(`);
    }
  });

  it('bakes the shape in as constants and says how it rounds', () => {
    const { source } = renderAttentionKernel(attentionKernel({ dim: 2048, heads: 16, kvHeads: 4 }), { spec: 'x', specFile: 'x.qal' });
    expect(source).toContain('constexpr unsigned HEAD_SIZE = 128u;');
    expect(source).toContain('constexpr unsigned HEADS = 16u;');
    expect(source).toContain('constexpr unsigned KV_HEADS = 4u;');
    expect(source).toContain('constexpr float SCALE = 0.0883883476f;');
    expect(source).toMatch(/rounded to bf16/);
    expect(source).toMatch(/mma\.sync m16n8k16/);
  });

  it('renders deterministically, with user text only in comments', () => {
    const kernel = attentionKernel({ dim: 512, heads: 8, kvHeads: 2 });
    const spec = { spec: 'evil */ #include <x>\n', specFile: 'a b;$(rm).qal' };
    const a = renderAttentionKernel(kernel, spec).source;
    expect(renderAttentionKernel(kernel, spec).source).toBe(a);
    expect(a).not.toContain('*/ #include');
    expect(a).toContain("qalc compile 'a b;$(rm).qal'");
    for (const line of a.split('\n').filter((l) => l.includes('evil'))) expect(line.startsWith('//')).toBe(true);
  });

  it('computes each grid from batch and seqLen, ragged seqLen rounded up to a whole tile', () => {
    const kernel = attentionKernel({ dim: 512, heads: 8, kvHeads: 2 });
    expect(attentionGrid(kernel, 'forward', 3, 130)).toEqual([2, 8, 3]); // 128 queries a forward block
    expect(attentionGrid(kernel, 'backward_dq', 1, 64)).toEqual([1, 8, 1]);
    expect(attentionGrid(kernel, 'backward_dkdv', 2, 65)).toEqual([2, 2, 2]);
    expect(attentionGrid(kernel, 'backward_delta', 2, 5)).toEqual([Math.ceil((2 * 5 * 8) / 8), 1, 1]);
    expect(() => attentionGrid(kernel, 'sideways', 1, 1)).toThrow(/no entry point sideways/);
  });

  it('sizes shared memory per head size: float32 staging and bf16 tiles a step; dq and dkdv step by 32 over head size 64', () => {
    // forward, head size 8 (padded to 16): 2 x 64 keys (K, V) of 16 floats staged + 24 bf16 a row.
    expect(attentionTiling(8)).toMatchObject({ headPad: 16, dkdvBlockQuery: 64, dqBlockKey: 64, forwardSharedBytes: 2 * 64 * (16 * 4 + 24 * 2) });
    // dq, head size 128: 2 x 32 keys staged (50176 B) beat the q and dOut tiles staged before the loop (2 x 64 x 136 x 2 B).
    expect(attentionTiling(128)).toMatchObject({ headPad: 128, dkdvBlockQuery: 32, dqBlockKey: 32, dqSharedBytes: 2 * 32 * (128 * 4 + 136 * 2) });
    // dkdv: K, V of 64 keys, then a step of 32 queries (q, dOut), then two steps' lse and delta.
    expect(attentionTiling(128).dkdvSharedBytes).toBe(2 * 64 * 136 * 2 + 2 * 32 * (128 * 4 + 136 * 2) + 4 * 32 * 4);
    // 8-warp forward blocks: the 128-row q tile passes through the same memory first.
    const wide = attentionTiling(128, { forwardWarps: 8, forwardBlockKey: 32, dqWarps: 4, dqBlockKey: 32, dkdvWarps: 8, dkdvBlockQuery: 32 });
    expect(wide.forwardSharedBytes).toBe(Math.max(128 * 136 * 2, 2 * 32 * (128 * 4 + 136 * 2)));
    expect(attentionTiling(40).headPad).toBe(48);
    // bf16 io: no staging; a step's two tiles in two stages of bf16 buffers. The defaults at head
    // size 128 (a3f's 4-warp forward, a3e's 64 queries a dkdv step) fit two blocks a multiprocessor.
    const bf16 = attentionTiling(128, undefined, 'bf16');
    expect(bf16).toMatchObject({ forwardWarps: 4, forwardBlockKey: 64, dkdvBlockQuery: 64, dqBlockKey: 32 });
    expect(bf16.forwardSharedBytes).toBe(Math.max(64 * 136 * 2, 2 * 2 * 64 * 136 * 2));
    expect(bf16.dqSharedBytes).toBe(Math.max(2 * 64 * 136 * 2, 2 * 2 * 32 * 136 * 2));
    expect(bf16.dkdvSharedBytes).toBe(2 * 64 * 136 * 2 + 2 * 2 * 64 * 136 * 2 + 4 * 64 * 4);
    expect(2 * Math.max(bf16.forwardSharedBytes, bf16.dkdvSharedBytes)).toBeLessThanOrEqual(227 * 1024);
    // At head size 64 and under, and for float32 rows, the defaults are unchanged.
    expect(attentionTiling(64, undefined, 'bf16')).toMatchObject({ forwardWarps: 8, dkdvBlockQuery: 64, dqBlockKey: 64 });
  });

  it('names a tile variant by its suffix, with its blocks and grids', () => {
    const tuning = { forwardWarps: 4, forwardBlockKey: 64, dqWarps: 8, dqBlockKey: 64, dkdvWarps: 8, dkdvBlockQuery: 32 };
    const kernel = attentionKernel({ dim: 4096, heads: 32, kvHeads: 32 }, { name: 'w8', tuning });
    expect(kernel.kernel).toBe('attention_h32_kv32_d128_f32_w8');
    expect(kernel.entryPoints.map((e) => e.block[0])).toEqual([128, 256, 256, 256]);
    expect(attentionGrid(kernel, 'forward', 1, 2048)).toEqual([32, 32, 1]);
    expect(attentionGrid(kernel, 'backward_dq', 1, 2048)).toEqual([16, 32, 1]);
    expect(attentionGrid(kernel, 'backward_dkdv', 1, 2048)).toEqual([16, 32, 1]);
  });

  it('refuses shapes the template does not take, by reason', () => {
    expect(() => attentionKernel({ dim: 512, heads: 8, kvHeads: 3 })).toThrow(/not a multiple of kv heads 3/);
    expect(() => attentionKernel({ dim: 96, heads: 8, kvHeads: 8 })).toThrow(/head size 12 is not a multiple of 8/);
    expect(() => attentionKernel({ dim: 2048, heads: 8, kvHeads: 8 })).toThrow(/head size 256 .* up to 128/);
  });
});
