// The model with ops that fuse lm_head and the cross-entropy (TrainingOps.lmHeadCrossEntropy):
// with the TypeScript reference as the fused op, a tiny random model gives the unfused ops'
// loss and gradients exactly — the training forward that takes lm_head's input gradient at
// once, a loss-only forward whose backward runs the fused op again, a second backward of one
// forward — and computes no logits (reading them throws) unless the caller wants them.
import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/reference/random.ts';
import type { TrainingOps } from '../../src/runtime/ops.ts';
import { lmHeadCrossEntropy } from '../../src/runtime/typescript/lm-head-cross-entropy.ts';
import { TYPESCRIPT_OPS } from '../../src/runtime/typescript/ops.ts';
import { QaLoraModel, type Batch, type ForwardOptions } from '../../src/train/qalora-model.ts';
import { specForEveryProjection } from '../../src/train/qalora-spec.ts';
import { randomCheckpoint, TINY_ARCH } from './tiny-model.ts';

const tiny = randomCheckpoint(TINY_ARCH, 23);
const spec = specForEveryProjection(TINY_ARCH, () => ({ bits: 4, group: 4, adapter: { rank: 2, alpha: 4, dropout: 0.2, pooling: 'mean' } }));
const rng = createRng(4);
const B = 2, T = 7;
const batch: Batch = {
  batchSize: B, seqLen: T,
  tokens: Array.from({ length: B * T }, () => rng.int(TINY_ARCH.vocab)),
  targets: Array.from({ length: B * T }, (_, i) => (i === 4 ? -1 : rng.int(TINY_ARCH.vocab))),
  lossMask: Array.from({ length: B * T }, (_, i) => (i % 3 === 0 ? 0 : 1)),
};
const fusedOps: TrainingOps = { ...TYPESCRIPT_OPS, lmHeadCrossEntropy };

/** B moved off 0 (so that every gradient is non-zero), the same in every model. */
function model(ops: TrainingOps): QaLoraModel {
  const m = new QaLoraModel(tiny, spec, { dtype: 'float32', seed: 2, ops });
  const draws = createRng(9);
  for (const { adapter } of m.adapters()) adapter.b.forEach((_, i) => { adapter.b[i] = 0.1 * draws.normal(); });
  return m;
}

async function step(m: QaLoraModel, options: ForwardOptions, backwards: number): Promise<{ loss: number; gradients: Float32Array[] }> {
  const loss = await m.forward(batch, options);
  for (let i = 0; i < backwards; i++) await m.backward();
  return { loss, gradients: m.parameters().map((p) => Float32Array.from(p.grad)) };
}

describe('QaLoraModel with lm_head and the cross-entropy fused', () => {
  for (const [name, options, backwards] of [
    ['a training forward (dx taken in the forward)', { training: true, dropoutSeed: 3, logitsOnDevice: true }, 1],
    ['a loss-only forward (the backward runs the fused op)', { logitsOnDevice: true }, 1],
    ['two backwards of one training forward', { training: true, dropoutSeed: 3, logitsOnDevice: true }, 2],
  ] as const) {
    it(`gives the unfused ops' loss and gradients exactly: ${name}`, async () => {
      const unfused = model(TYPESCRIPT_OPS), fused = model(fusedOps);
      const want = await step(unfused, options, backwards);
      const got = await step(fused, options, backwards);
      expect(got.loss).toBe(want.loss);
      expect(Number.isFinite(got.loss)).toBe(true);
      expect(got.gradients).toEqual(want.gradients);
      expect(got.gradients.every((g) => g.some((v) => v !== 0))).toBe(true);
      expect(() => fused.logits).toThrow(/without logits/);
      expect(unfused.logits).toHaveLength(B * T * TINY_ARCH.vocab);
    });
  }

  it('computes the logits when the caller wants them, and for a batch without targets', async () => {
    const unfused = model(TYPESCRIPT_OPS), fused = model(fusedOps);
    expect(await fused.forward(batch)).toBe(await unfused.forward(batch));
    expect(fused.logits).toEqual(unfused.logits);
    const { targets: _, lossMask: __, ...tokensOnly } = batch;
    expect(await fused.forward(tokensOnly, { logitsOnDevice: true })).toBeNaN();
    await unfused.forward(tokensOnly);
    expect(fused.logits).toEqual(unfused.logits);
  });
});
