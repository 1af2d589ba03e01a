// The quant settings check accepts, as the trainer and the merge compute them: symmetric = true
// (GPTQ's sym=True: zero 2^(b−1)), the stored scale dtype (fp16 by default: the model computes
// with the scales a checkpoint would hold) and pad = zero (in-features padded with zero inputs). Checked against a float64 reference
// written here from the formulas, on a tiny random model and on stories260K through a spec.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { frontEnd } from '../../src/compile.ts';
import { mergedDenseCheckpoint, readMergedModelAsDense } from '../../src/export/merged-model.ts';
import { readLlama2cCheckpoint } from '../../src/model/llama2c-checkpoint.ts';
import { dequantize } from '../../src/quant/dequantize.ts';
import type { QuantizedWeight } from '../../src/quant/quantized-weight.ts';
import { roundHalfEven } from '../../src/quant/round-half-even.ts';
import { ScaleRangeError, type ScaleDtype } from '../../src/quant/scale-dtype.ts';
import { f16Bits, f16Value } from '../../src/runtime/cuda/host-data.ts';
import { nativeCpuOps } from '../../src/runtime/cpu/native-ops.ts';
import { cpuBackend } from '../../src/runtime/cpu/backend.ts';
import { mergeRun } from '../../src/train/merge-run.ts';
import { Progress } from '../../src/train/progress.ts';
import { QaLoraModel, type Batch } from '../../src/train/qalora-model.ts';
import { PROJECTIONS, specForEveryProjection, type ProjectionSpec } from '../../src/train/qalora-spec.ts';
import { train } from '../../src/train/trainer.ts';
import { randomCheckpoint, STORIES260K, TINY_ARCH, TINY_SHAKESPEARE, TOK512 } from './tiny-model.ts';
import { createRng } from '../../src/reference/random.ts';
import { relativeMaxError } from '../support/relative-error.ts';
import { inFeaturesOf } from '../../src/runtime/typescript/qalora-linear.ts';

const f16 = (x: number) => f16Value(f16Bits(x));

/** GPTQ's symmetric min-max quantizer for one column of one group, in float64, from its definition. */
function symmetricReference(weights: readonly number[], bits: number): { scale: number; zero: number; codes: number[] } {
  const maxq = 2 ** bits - 1;
  const lowest = Math.min(0, ...weights), highest = Math.max(0, ...weights);
  const reach = Math.max(-lowest, highest);
  // The range is [−reach, reach] when the group has a negative weight; GPTQ keeps [0, max] otherwise.
  const scale = lowest < 0 ? (2 * reach) / maxq : reach / maxq;
  const zero = (maxq + 1) / 2;
  return { scale, zero, codes: weights.map((w) => Math.min(maxq, Math.max(0, roundHalfEven(w / scale) + zero))) };
}

const spec = (options: Partial<ProjectionSpec>) => specForEveryProjection(TINY_ARCH, () => ({
  bits: 4, group: 4, adapter: { rank: 2, alpha: 4, dropout: 0, pooling: 'mean' }, ...options,
}));

const batch: Batch = { batchSize: 2, seqLen: 6, tokens: [1, 4, 2, 7, 3, 9, 5, 1, 8, 2, 6, 10], targets: [4, 2, 7, 3, 9, 5, 1, 8, 2, 6, 10, 0] };

describe('symmetric quantization and stored scales in the trainer (tiny model, float64)', () => {
  const checkpoint = randomCheckpoint(TINY_ARCH, 11);

  it.each<[ScaleDtype, (x: number) => number]>([['fp16', f16], ['fp32', Math.fround]])('symmetric, %s scales: codes, zeros and scales of every projection are the reference\'s', (dtype, round) => {
    const model = new QaLoraModel(checkpoint, spec({ symmetric: true, scaleDtype: dtype }), { dtype: 'float64' });
    let rounded = 0;
    model.blocks.forEach((block, l) => PROJECTIONS.forEach((p) => {
      const weight = (block[p].layer.base as { weight: QuantizedWeight }).weight;
      const tensor = checkpoint.layers[l]![p];
      const [N, K] = tensor.shape as [number, number];
      for (let k = 0; k < K / 4; k++) {
        for (let o = 0; o < N; o++) {
          const column = [0, 1, 2, 3].map((i) => tensor.data[o * K + k * 4 + i]!);
          const reference = symmetricReference(column, 4);
          expect(weight.zeros[k * N + o]).toBe(8);
          expect(weight.scales[k * N + o]).toBe(round(reference.scale));
          if (round(reference.scale) !== reference.scale) rounded++;
          expect([0, 1, 2, 3].map((i) => weight.q[(k * 4 + i) * N + o])).toEqual(reference.codes);
        }
      }
    }));
    expect(rounded).toBeGreaterThan(0);
  });

  it('merges a trained symmetric adapter into the zeros: Ŵ\' = s·(q − 8) + σ/g·(A·B) of the group, in float64', async () => {
    const model = new QaLoraModel(checkpoint, spec({ symmetric: true, scaleDtype: 'fp16' }), { dtype: 'float64', seed: 5 });
    for (const p of model.parameters()) for (let i = 0; i < p.value.length; i++) p.value[i] = 0.05 * Math.sin(3 * i + p.value.length);
    const merged = mergedDenseCheckpoint(model, { ...checkpoint, tensors: new Map() } as never);
    let worst = 0;
    model.blocks.forEach((block, l) => PROJECTIONS.forEach((p) => {
      const { base, adapter } = block[p].layer;
      const weight = (base as { weight: QuantizedWeight }).weight;
      const { inFeatures: K, outFeatures: N } = weight;
      const dense = dequantize(weight);
      const stored = merged.layers[l]![p].data;
      for (let i = 0; i < K; i++) {
        for (let o = 0; o < N; o++) {
          let ab = 0;
          for (let j = 0; j < adapter!.rank; j++) ab += adapter!.a[Math.floor(i / 4) * adapter!.rank + j]! * adapter!.b[j * N + o]!;
          const expected = weight.scales[Math.floor(i / 4) * N + o]! * (weight.q[i * N + o]! - 8) + (adapter!.scaling / 4) * ab;
          expect(dense[i * N + o]).toBe(weight.scales[Math.floor(i / 4) * N + o]! * (weight.q[i * N + o]! - 8));
          worst = Math.max(worst, Math.abs(stored[o * K + i]! - expected));
        }
      }
    }));
    expect(worst).toBeLessThan(1e-6); // the merged checkpoint is float32
  });

  it('the native cpu ops compute the same symmetric, fp16-scaled model as the TypeScript reference', async () => {
    const reference = new QaLoraModel(checkpoint, spec({ symmetric: true, scaleDtype: 'fp16' }), { seed: 2 });
    const native = new QaLoraModel(checkpoint, spec({ symmetric: true, scaleDtype: 'fp16' }), { seed: 2, ops: nativeCpuOps() });
    for (const model of [reference, native]) for (const p of model.parameters()) p.value.forEach((_, i) => { p.value[i] = 0.02 * Math.cos(i); });
    const [a, b] = [await reference.forward(batch), await native.forward(batch)];
    expect(Math.abs(a - b)).toBeLessThan(1e-5);
  });

  it('refuses scales that fp16 cannot hold, naming the layer and the way out', () => {
    const huge = randomCheckpoint(TINY_ARCH, 12);
    huge.layers[1]!.up.data.forEach((_, i, data) => { data[i] *= 1e7; });
    expect(() => new QaLoraModel(huge, spec({ scaleDtype: 'fp16' }))).toThrow(ScaleRangeError);
    expect(() => new QaLoraModel(huge, spec({ scaleDtype: 'fp16' }))).toThrow(/layers\.1\.up: the scale .* is Infinity in fp16: its weights are too large for fp16 scales; set `scale = fp32`/);
    expect(() => new QaLoraModel(huge, spec({ scaleDtype: 'fp32' }))).not.toThrow();
  });
});

describe('pad = zero in the trainer (tiny model: dim 8 and hidden 12 with groups of 5, float64)', () => {
  const checkpoint = randomCheckpoint(TINY_ARCH, 31);
  const padded = (pooling: 'mean' | 'sum') => specForEveryProjection(TINY_ARCH, () => ({
    bits: 4, group: 5, pad: true, adapter: { rank: 2, alpha: 3, dropout: 0, pooling },
  }));
  const batchOf = (seed: number): Batch => {
    const rng = createRng(seed);
    return { batchSize: 2, seqLen: 5, tokens: Array.from({ length: 10 }, () => rng.int(TINY_ARCH.vocab)), targets: Array.from({ length: 10 }, () => rng.int(TINY_ARCH.vocab)) };
  };
  const withAdapters = (model: QaLoraModel, seed: number) => {
    const rng = createRng(seed);
    for (const p of model.parameters()) for (let i = 0; i < p.value.length; i++) p.value[i] = 0.3 * rng.normal();
    return model;
  };

  it('pads in-features to a multiple of the group with zero rows, quantized with the real ones', () => {
    const model = new QaLoraModel(checkpoint, padded('mean'), { dtype: 'float64' });
    const down = model.blocks[1]!.down;
    const weight = (down.layer.base as { weight: QuantizedWeight }).weight;
    expect([down.inFeatures, inFeaturesOf(down.layer.base), weight.scales.length / weight.outFeatures]).toEqual([12, 15, 3]);
    expect([model.blocks[0]!.q.inFeatures, inFeaturesOf(model.blocks[0]!.q.layer.base)]).toEqual([8, 10]);
    // The padding rows dequantize to exactly 0 (RTN's range always holds 0).
    const dense = dequantize(weight);
    for (let i = 12 * weight.outFeatures; i < dense.length; i++) expect(dense[i]).toBe(0);
  });

  it.each(['mean', 'sum'] as const)('%s pooling: the trained model computes what its merge stores, in float64 (the padding inputs are 0 in both)', async (pooling) => {
    const model = withAdapters(new QaLoraModel(checkpoint, padded(pooling), { dtype: 'float64', seed: 4 }), 6);
    const merged = mergedDenseCheckpoint(model, { ...checkpoint, tensors: new Map() } as never);
    expect(merged.layers[0]!.down.shape).toEqual([8, 12]);
    const dense = new QaLoraModel(merged, specForEveryProjection(TINY_ARCH, () => ({ bits: null, group: 1, adapter: null })), { dtype: 'float64' });
    const batch = batchOf(3);
    const [a, b] = [await model.forward(batch), await dense.forward(batch)];
    expect(Math.abs(a - b)).toBeLessThan(1e-6); // the merged weights are float32
    expect(relativeMaxError(Float64Array.from(model.logits), Float64Array.from(dense.logits))).toBeLessThan(1e-5);
  });

  it('gradients of every A and B match finite differences, through the padded layers\' dx', async () => {
    const model = withAdapters(new QaLoraModel(checkpoint, padded('mean'), { dtype: 'float64', seed: 9 }), 10);
    const batch = batchOf(12);
    const loss = () => model.forward(batch);
    await loss();
    await model.backward();
    const rng = createRng(13);
    const analytic: number[] = [], numeric: number[] = [];
    for (const parameter of model.parameters()) {
      for (let sample = 0; sample < 2; sample++) {
        const index = rng.int(parameter.value.length);
        const saved = parameter.value[index]!;
        parameter.value[index] = saved + 1e-5;
        const plus = await loss();
        parameter.value[index] = saved - 1e-5;
        const minus = await loss();
        parameter.value[index] = saved;
        numeric.push((plus - minus) / 2e-5);
        analytic.push(parameter.grad[index]!);
      }
    }
    expect(relativeMaxError(Float64Array.from(analytic), Float64Array.from(numeric))).toBeLessThan(1e-6);
  });

  it('the native cpu ops give the TypeScript ops\' loss; a device backend is refused by name', async () => {
    const reference = withAdapters(new QaLoraModel(checkpoint, padded('mean'), { seed: 2 }), 3);
    const native = withAdapters(new QaLoraModel(checkpoint, padded('mean'), { seed: 2, ops: nativeCpuOps() }), 3);
    const batch = batchOf(5);
    expect(Math.abs((await reference.forward(batch)) - (await native.forward(batch)))).toBeLessThan(1e-5);
    expect(() => new QaLoraModel(checkpoint, padded('mean'), { ops: { ...nativeCpuOps(), name: 'webgpu' } }))
      .toThrow(/layers\.0\.q: pad = zero runs on the cpu backend only so far \(the webgpu ops keep activations on the device\)/);
  });
});

describe('a spec with symmetric = true or pad = zero on stories260K', () => {
  it.each([['symmetric = true', 'override proj down { group = 43 }'], ['pad = zero', '']])('%s: trains on the cpu backend, and merges to a model that computes what was trained', async (setting, override) => {
    const work = mkdtempSync(join(tmpdir(), 'qalc-symmetric-'));
    const data = join(work, 'shakespeare.txt');
    writeFileSync(data, readFileSync(TINY_SHAKESPEARE, 'utf8').slice(0, 30_000));
    const specPath = join(work, 'sym.qal');
    writeFileSync(specPath, `spec sym
model {
  checkpoint = "${STORIES260K}"
  tokenizer = "${TOK512}"
}
quant { bits = 4  group = 16  ${setting} }
${override}
adapter { rank = 4  alpha = 8 }
train {
  data = "${data}"
  seq_len = 32
  batch = 4
  lr = 3e-3
  steps = 3
}
`);
    const planned = frontEnd(specPath);
    expect(planned.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const plan = planned.plan!;
    const { ops } = cpuBackend();
    const quiet = new Progress({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream, 1);
    const out = join(work, 'run');
    const summary = await train({ plan, specDir: work, out, ops, progress: quiet });
    expect(summary.steps).toBe(3);
    const merged = await mergeRun(plan, work, join(out, 'checkpoint.safetensors'), join(out, 'merged.safetensors'), ops);
    expect(merged.relativeDifference).toBeLessThan(1e-4);
    // The merged file's dense weights differ from the float weights by at most a symmetric
    // 4-bit step per group, plus the adapter's small update.
    const dense = readMergedModelAsDense(join(out, 'merged.safetensors'));
    const original = readLlama2cCheckpoint(STORIES260K);
    const q = dense.layers[0]!.q.data, w = original.layers[0]!.q.data;
    let worst = 0;
    for (let i = 0; i < q.length; i++) worst = Math.max(worst, Math.abs(q[i]! - w[i]!));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(0.2);
  });
});
