import { describe, expect, it } from 'vitest';
import { compileSpec, STORIES_BIN } from '../support/inline-spec.ts';

function plan(body: string, model?: string) {
  const r = compileSpec(body, model);
  expect(r.diagnostics.filter((d) => d.severity === 'error').map((d) => d.message)).toEqual([]);
  return r.plan!;
}

describe('the plan', () => {
  it('has one record per linear layer with LLaMA shapes and Hugging Face names', () => {
    const p = plan('quant { bits = 4  group = 32 }\nadapter { rank = 64 }', 'model { preset = llama2_70b }');
    expect(p.layers).toHaveLength(80 * 7);
    const shape = (name: string) => { const l = p.layers.find((x) => x.name === name)!; return [l.inFeatures, l.outFeatures, l.hfName]; };
    expect(shape('layers.0.q')).toEqual([8192, 8192, 'model.layers.0.self_attn.q_proj']);
    expect(shape('layers.0.k')).toEqual([8192, 1024, 'model.layers.0.self_attn.k_proj']); // 8 kv heads × 128
    expect(shape('layers.79.gate')).toEqual([8192, 28672, 'model.layers.79.mlp.gate_proj']);
    expect(shape('layers.79.down')).toEqual([28672, 8192, 'model.layers.79.mlp.down_proj']);
  });

  it('sizes a layer as GPTQ stores it, against fp16', () => {
    // LLaMA-7B q: K = N = 4096, 4-bit, g = 32 → L = 128 groups.
    const p = plan('quant { bits = 4  group = 32 }\nadapter { rank = 64  dtype = fp16 }', 'model { preset = llama_7b }');
    const q = p.layers.find((l) => l.name === 'layers.0.q')!;
    expect(q.quant).toMatchObject({ bits: 4, group: 32, groups: 128, paddedInFeatures: 4096 });
    expect(q.sizes).toEqual({
      fp16Bytes: 4096 * 4096 * 2,
      weightBytes: (4096 * 4 / 32) * 4 * 4096, // qweight int32 [K·b/32, N]
      scaleBytes: 128 * 4096 * 2, // fp16 [L, N]
      zeroBytes: 128 * (4096 * 4 / 32) * 4, // qzeros int32 [L, N·b/32]
      adapterParams: 128 * 64 + 64 * 4096, // A is L×r, B is r×N
      adapterBytes: (128 * 64 + 64 * 4096) * 2,
    });
    expect(q.adapter).toMatchObject({ kind: 'qalora', rank: 64, alpha: 16, scale: 0.25, pooling: 'mean', inputWidth: 128 });
    expect(q.kernels).toEqual(['quantize', 'pack', 'dequantize', 'forward', 'decode', 'backward_data', 'adapter_grad', 'merge']);
  });

  it('packs 3-bit weights across word boundaries and pads the last word', () => {
    const p = plan('quant { bits = 3  group = 16  zero = fp32 }\noverride proj down { group = 43 }', `model { checkpoint = "${STORIES_BIN}" }`);
    const down = p.layers.find((l) => l.name === 'layers.0.down')!;
    expect(down.sizes.weightBytes).toBe(Math.ceil(172 * 3 / 32) * 4 * 64); // 17 words per column
    expect(down.sizes.zeroBytes).toBe(4 * 64 * 4); // float zeros: L × N × 4 bytes
  });

  it('totals the model: 7B at INT4 g32 is about a third of fp16', () => {
    const p = plan('quant { bits = 4  group = 32 }\nadapter { rank = 64 }', 'model { preset = llama_7b }');
    const t = p.totals;
    expect(t.linearFp16Bytes).toBe(32 * (4 * 4096 * 4096 + 3 * 4096 * 11008) * 2);
    expect(t.otherBytes).toBe((2 * 32000 * 4096 + 65 * 4096) * 2); // embedding, untied lm_head, norms
    expect(t.modelFp16Bytes / 2 ** 30).toBeCloseTo(12.55, 1);
    expect(t.modelQuantizedBytes / t.modelFp16Bytes).toBeGreaterThan(0.28);
    expect(t.modelQuantizedBytes / t.modelFp16Bytes).toBeLessThan(0.33);
    expect(t.adapterParams).toBe(32 * (4 * (128 * 64 + 64 * 4096) + 2 * (128 * 64 + 64 * 11008) + (344 * 64 + 64 * 4096)));
  });

  it('applies overrides in source order, the last one winning, and records where each layer came from', () => {
    const p = plan([
      'quant { bits = 4  group = 64 }',
      'adapter { rank = 8 }',
      'override layers 4..35 { bits = 3 }',
      'override layers 12..27 { bits = 2  group = 32 }',
      'override proj down { bits = 8  group = 128  rank = 16 }',
      'override layers 0 proj q { adapter = off }',
    ].join('\n'), 'model { preset = llama_13b }');
    const at = (name: string) => p.layers.find((l) => l.name === name)!;
    expect([at('layers.0.q').quant?.bits, at('layers.4.q').quant?.bits, at('layers.12.q').quant?.bits, at('layers.36.q').quant?.bits]).toEqual([4, 3, 2, 4]);
    expect(at('layers.12.q').quant?.group).toBe(32);
    expect(at('layers.12.down').quant).toMatchObject({ bits: 8, group: 128 });
    expect(at('layers.12.down').adapter?.rank).toBe(16);
    expect(at('layers.0.q').adapter).toBeNull();
    expect(at('layers.0.k').adapter?.rank).toBe(8);
    // Sources are the lines whose values the layer ended up with: line 7 overrode all of 5 and 6 for down.
    expect(at('layers.12.down').sources).toEqual(['t.qal:3', 't.qal:4', 't.qal:7']);
    expect(at('layers.12.q').sources).toEqual(['t.qal:3', 't.qal:4', 't.qal:6']);
    expect(at('layers.0.q').sources).toEqual(['t.qal:3', 't.qal:8']);
  });

  it('leaves lm_head out unless asked, and quantizes it when asked', () => {
    expect(plan('quant { bits = 4  group = 32 }').layers.some((l) => l.name === 'lm_head')).toBe(false);
    const p = plan('quant { bits = 4  group = 32 }\noverride proj lm_head { quantize = true  bits = 8 }');
    const head = p.layers.find((l) => l.name === 'lm_head')!;
    expect(head).toMatchObject({ inFeatures: 4096, outFeatures: 32000, quant: { bits: 8 }, adapter: null });
  });

  it('fills training and target settings with their defaults', () => {
    const p = plan('quant { bits = 4  group = 32 }\ntrain { steps = 10 }\ntarget wgsl { }');
    expect(p.train).toMatchObject({ steps: 10, optimizer: 'adamw', max_grad_norm: 0.3, seq_len: 256 });
    expect(p.targets.wgsl).toEqual({ precision: 'f32' });
  });
});
