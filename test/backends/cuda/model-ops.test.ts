// The CUDA model ops as `qalc compile` emits them (src/backends/cuda/model-ops.ts and
// model-op-emit.ts): the list a plan gets, names from numbers and enums only, the architecture's
// shapes baked in, every entry point's C signature exactly its manifest parameters, headers that
// stay comments whatever the spec's path, and the manifest's "modelOps" read back by
// parseManifest (and refused when damaged). The emitted files themselves are golden-tested as
// part of generated/ (test/bindings/generated.test.ts: generated/<example>/cuda/ops/).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { emitModelOps } from '../../../src/backends/emit-kernels.ts';
import { modelOpKernels, type ModelOpKernel } from '../../../src/backends/cuda/model-ops.ts';
import { MODEL_OPS } from '../../../src/backends/cuda/model-op-names.ts';
import { modelOpGrid } from '../../../src/backends/cuda/model-op-grid.ts';
import { ManifestError, parseManifest } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import { syntheticPlan } from '../../ir/kernel-cases.ts';
import { compileSpec } from '../../support/inline-spec.ts';

const stories = frontEnd('examples/stories260k.qal').plan!;
const RAGGED = 'model { dim = 72  hidden_dim = 200  layers = 2  heads = 6  kv_heads = 2  vocab = 999  context = 64 }\nquant { bits = 4  group = 8 }\nadapter { rank = 2  alpha = 4 }';
const ragged = compileSpec(RAGGED).plan!;
const withDropout = compileSpec(RAGGED.replace('alpha = 4 }', 'alpha = 4  dropout = 0.05 }')).plan!;

const byOp = (kernels: readonly ModelOpKernel[]) => new Map(kernels.map((k) => [k.op, k]));

describe('CUDA model ops', () => {
  it('lists every op for stories260K, shapes in the names', () => {
    expect(modelOpKernels(stories).map((k) => k.kernel)).toEqual([
      'embedding_v512_c64_bf16', 'rmsnorm_c64_bf16', 'convert_bf16', 'rope_d8_bf16', 'attention_h8_kv4_d8_bf16', 'residual_bf16', 'swiglu_bf16',
      'lm_head_c64_v512_f32', 'cross_entropy_v512_bf16', 'sum_squares_f32', 'adamw_f32', 'unpool_bf16', 'decode_attention_h8_kv4_d8',
    ]);
    expect(new Set(modelOpKernels(stories).map((k) => k.op))).toEqual(new Set(MODEL_OPS.filter((op) => op !== 'dropout')));
  });

  it('adds the dropout multipliers for a spec whose adapters drop, and only then', () => {
    expect(modelOpKernels(withDropout).map((k) => k.kernel).slice(-3)).toEqual(['dropout_f32', 'unpool_bf16', 'decode_attention_h6_kv2_d12']);
    expect(modelOpKernels(withDropout).map((k) => k.op).filter((op) => op !== 'dropout')).toEqual(modelOpKernels(ragged).map((k) => k.op));
    expect(modelOpKernels(ragged).map((k) => k.op)).not.toContain('dropout');
  });

  it('adds the unpool for a quantized layer with an adapter and a dequantize kernel (the GEMM path), and only then, in the activation type', () => {
    const layer = { inFeatures: 172, outFeatures: 64, bits: 4, group: 43 } as const;
    const adapted = syntheticPlan([{ ...layer, adapter: { rank: 4, pooling: 'mean' } }]);
    expect(byOp(modelOpKernels(adapted)).get('unpool')).toMatchObject({ kernel: 'unpool_bf16', constants: { THREADS: 256, COLUMNS_PER_THREAD: 4 } });
    expect(byOp(modelOpKernels(adapted, { precision: 'f16' })).get('unpool')!.kernel).toBe('unpool_f16');
    expect(modelOpKernels(syntheticPlan([layer])).map((k) => k.op)).not.toContain('unpool');
    const withoutDequantize = { ...adapted, layers: adapted.layers.map((l) => ({ ...l, kernels: l.kernels.filter((role) => role !== 'dequantize') })) };
    expect(modelOpKernels(withoutDequantize).map((k) => k.op)).not.toContain('unpool');
  });

  it('bakes a written architecture\'s ragged shapes and its eps in as constants', () => {
    const ops = byOp(modelOpKernels(ragged));
    expect(ops.get('rmsnorm')!.constants).toMatchObject({ CHANNELS: 72, EPS: 1e-5 });
    expect(ops.get('rope')!.constants).toMatchObject({ HEAD_SIZE: 12, PAIRS: 6 });
    expect(ops.get('lm_head')!.kernel).toBe('lm_head_c72_v999_f32');
    expect(ops.get('cross_entropy')!.constants).toMatchObject({ VOCAB: 999 });
    expect(ops.get('embedding')!.constants).toMatchObject({ VOCAB: 999, CHANNELS: 72 });
  });

  it('converts to the spec\'s 16-bit activation type, or the one asked for', () => {
    expect(byOp(modelOpKernels(stories)).get('convert')!.kernel).toBe('convert_bf16');
    const f16 = byOp(modelOpKernels(stories, { precision: 'f16' })).get('convert')!;
    expect(f16.kernel).toBe('convert_f16');
    const [emitted] = emitModelOps([f16], { spec: 'stories260k', specFile: 'examples/stories260k.qal', precision: 'f16' });
    expect(emitted!.source).toContain('using Activation = __half;');
    expect(emitted!.source).toContain('Regenerate: qalc compile examples/stories260k.qal (target cuda { activation = fp16 })');
  });

  it('names every symbol <kernel>__<entry> from numbers and enums, and gives each the signature of its parameters', () => {
    const emitted = emitModelOps(modelOpKernels(withDropout), { spec: 't', specFile: 't.qal', precision: 'bf16' });
    for (const { kernel, source, fileName } of emitted) {
      expect(fileName).toBe(`ops/${kernel.kernel}.cu`);
      expect(kernel.kernel).toMatch(/^[a-z][a-z0-9_]*$/);
      for (const entry of kernel.entryPoints) {
        expect(entry.symbol).toBe(`${kernel.kernel}__${entry.name}`);
        const signature = entry.parameters.map((p) => `${p.cType}${p.type === 'pointer' ? ' __restrict__' : ''} ${p.name}`).join(', ');
        expect(source, `${entry.symbol}'s definition`).toContain(`${entry.symbol}(${signature}) {`);
        expect(source).toMatch(new RegExp(`extern "C" __global__ void __launch_bounds__\\([A-Z_0-9 *,]+\\) ${entry.symbol}\\(`));
        expect(entry.block.every((n) => Number.isInteger(n) && n > 0)).toBe(true);
        expect(entry.block[0] * entry.block[1] * entry.block[2]).toBeLessThanOrEqual(1024);
        expect(entry.grid).toMatch(/^grid\.x = /);
      }
      const symbols = [...source.matchAll(/extern "C" __global__ void __launch_bounds__\([^)]*\) (\w+)\(/g)].map((m) => m[1]);
      expect(symbols, `${fileName}: exactly its entry points`).toEqual(kernel.entryPoints.map((e) => e.symbol));
    }
  });

  it('starts every file with a header of comments only, however odd the spec\'s path', () => {
    const emitted = emitModelOps(modelOpKernels(stories), { spec: 'odd*/name', specFile: "dir with 'quote'\n*/ $(rm -rf x)\\.qal", precision: 'bf16' });
    for (const { kernel, source } of emitted) {
      const header = source.slice(0, source.indexOf('#include'));
      for (const line of header.split('\n')) expect(line === '' || line.startsWith('//'), `${kernel.kernel}: ${line}`).toBe(true);
      expect(header).not.toContain('*/');
      expect(header).toContain('-gencode=arch=compute_90a,code=sm_90a');
      if (kernel.op === 'attention') continue; // helper A's renderer writes its own header
      // The unpool is a piece of a linear layer's backward, and says so.
      const role = { unpool: 'the adapter\'s input-gradient unpool of a quantized linear layer\'s backward', decode_attention: 'one new token\'s attention over the KV cache' }[kernel.op as string] ?? 'a model op';
      expect(header).toContain(`Op: ${kernel.op}, ${role}`);
      for (const entry of kernel.entryPoints) expect(header).toContain(`${entry.name}: ${entry.symbol}, block (${entry.block.join(', ')})`);
    }
  });

  it('computes each launch\'s grid as its header states it, for ragged sizes', () => {
    // The header's `grid.x = ceil(rows / 4), grid.y = ...`, evaluated here (the runtime calls modelOpGrid instead).
    const evaluate = (text: string, sizes: Record<string, number>) => {
      const axes = [1, 1, 1];
      for (const part of text.replace(/ \(fixed\)$/, '').split(', ')) {
        const [, axis, expression] = /^grid\.([xyz]) = (.+)$/.exec(part)!;
        const js = expression!.replace(/ceil\(/g, 'Math.ceil(').replace(/\b[a-zA-Z]+\b(?!\()/g, (name) => (name === 'Math' || name === 'ceil' ? name : String(sizes[name])));
        axes['xyz'.indexOf(axis!)] = Function(`return ${js}`)() as number;
      }
      return axes;
    };
    // Attention's grids are helper A's attentionGrid.
    for (const kernel of [...modelOpKernels(stories), ...modelOpKernels(withDropout)].filter((k) => k.op !== 'attention')) {
      for (const entry of kernel.entryPoints) {
        for (const rows of [1, 5, 37, 130, 512]) {
          const sizes = { rows, count: rows * 200 + 3, columns: 300, stride: 520, width: rows % 2 === 0 ? 72 : 24, groups: 43, keyWidth: rows % 2 === 0 ? 24 : 48 };
          expect(modelOpGrid(kernel, entry.name, sizes), `${entry.symbol} rows ${rows}`).toEqual(evaluate(entry.grid!, sizes));
        }
      }
    }
    expect(() => modelOpGrid(modelOpKernels(stories)[1]!, 'forward', {})).toThrow('rmsnorm_c64_bf16.forward: the grid needs rows (a non-negative integer), got undefined');
    expect(() => modelOpGrid(modelOpKernels(stories)[1]!, 'sideways', { rows: 1 })).toThrow('rmsnorm_c64_bf16 (rmsnorm) has no entry point sideways');
  });

  it('is deterministic', () => {
    const emit = () => emitModelOps(modelOpKernels(frontEnd('examples/stories260k.qal').plan!), { spec: 's', specFile: 's.qal', precision: 'bf16' }).map((k) => k.source);
    expect(emit()).toEqual(emit());
  });
});

describe('the manifest\'s modelOps', () => {
  const path = 'generated/stories260k/manifest.json';
  const text = readFileSync(path, 'utf8');

  it('reads back as the descriptions, with each file and code hash', () => {
    const manifest = parseManifest(text, path);
    expect(manifest.modelOps.map(({ file: _file, codeHash: _hash, ...kernel }) => kernel)).toEqual(modelOpKernels(stories));
    for (const op of manifest.modelOps) {
      expect(op.file).toBe(`cuda/ops/${op.kernel}.cu`);
      expect(op.codeHash).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it('is empty in a manifest from before model ops', () => {
    const old = JSON.parse(text);
    delete old.modelOps;
    expect(parseManifest(JSON.stringify(old), path).modelOps).toEqual([]);
  });

  it('a damaged entry is an error naming the file and the op', () => {
    const damage = (edit: (manifest: { modelOps: Record<string, unknown>[] }) => void) => {
      const manifest = JSON.parse(text);
      edit(manifest);
      return () => parseManifest(JSON.stringify(manifest), path);
    };
    expect(damage((m) => { m.modelOps[1]!['op'] = 'layernorm'; })).toThrow(new ManifestError(path, 'model op rmsnorm_c64_bf16: op must be one of ' + MODEL_OPS.join(', ')));
    expect(damage((m) => { (m.modelOps[1]!['entryPoints'] as Record<string, unknown>[])[0]!['block'] = [32, 4]; })).toThrow(/model op rmsnorm_c64_bf16: entry point forward is malformed/);
    expect(damage((m) => { ((m.modelOps[1]!['entryPoints'] as Record<string, unknown>[])[4]!['parameters'] as Record<string, unknown>[])[5]!['type'] = 'u64'; }))
      .toThrow(/model op rmsnorm_c64_bf16: entry point backward: parameter rows is malformed/);
    expect(damage((m) => { delete m.modelOps[0]!['codeHash']; })).toThrow(/model op embedding_v512_c64_bf16: codeHash must be a string/);
  });
});
