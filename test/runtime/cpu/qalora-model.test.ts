// QaLoraModel on the native CPU ops against the same model on the TypeScript ops, on
// stories260K: logits, loss and the gradient of every A and B (4-bit base, adapters on all 7
// projections, dropout, a loss mask, ragged groups), then a few AdamW steps; and bit-identical
// results for 1 and 2 threads.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { readLlama2cCheckpoint } from '../../../src/model/llama2c-checkpoint.ts';
import { readTokenizer } from '../../../src/model/read-tokenizer.ts';
import { nativeCpuOps } from '../../../src/runtime/cpu/native-ops.ts';
import { createRng } from '../../../src/reference/random.ts';
import { AdamW } from '../../../src/train/adamw.ts';
import { encodeDocuments, randomBatch } from '../../../src/train/batches.ts';
import { QaLoraModel, type Batch } from '../../../src/train/qalora-model.ts';
import { specForEveryProjection } from '../../../src/train/qalora-spec.ts';
import type { TrainingOps } from '../../../src/runtime/ops.ts';
import { STORIES260K, TINY_SHAKESPEARE, TOK512 } from '../../train/tiny-model.ts';
import { nativeBuilt, withOneAndTwoThreadsAsync } from './native-support.ts';
import { relativeMaxError } from '../../support/relative-error.ts';

const checkpoint = readLlama2cCheckpoint(STORIES260K);
const arch = checkpoint.arch;
const tokenizer = readTokenizer(TOK512, arch.vocab);
const stream = encodeDocuments(tokenizer, readFileSync(TINY_SHAKESPEARE, 'utf8').slice(0, 20_000));
const spec = specForEveryProjection(arch, (projection, inFeatures) => ({
  bits: projection === 'v' ? 8 : 4,
  group: inFeatures === arch.hiddenDim ? 43 : 16,
  adapter: { rank: 8, alpha: 16, dropout: projection === 'up' ? 0 : 0.1, pooling: projection === 'o' ? 'sum' : 'mean' },
}));

function batchWithMask(): Batch {
  const batch = randomBatch(stream, 3, 29, createRng(4));
  return { ...batch, lossMask: Array.from({ length: 3 * 29 }, (_, i) => (i % 29 < 5 ? 0 : 1)) };
}

interface Run {
  readonly losses: number[];
  readonly logits: Float32Array;
  readonly gradients: Float32Array[];
}

/** Forward + backward, with B moved away from zero so every gradient flows, then three AdamW steps. */
async function train(ops: TrainingOps | undefined): Promise<Run> {
  const model = new QaLoraModel(checkpoint, spec, { seed: 2, ...(ops ? { ops } : {}) });
  const rng = createRng(9);
  for (const { adapter } of model.adapters()) for (let i = 0; i < adapter.b.length; i++) adapter.b[i] = 0.05 * rng.normal();
  const batch = batchWithMask();
  const losses = [await model.forward(batch, { training: true, dropoutSeed: 1 })];
  const logits = Float32Array.from(model.logits);
  await model.backward();
  const gradients = model.parameters().map((p) => Float32Array.from(p.grad));
  const optimizer = new AdamW(model.parameters(), { lr: 1e-2, maxGradNorm: 1 });
  for (let step = 2; step <= 4; step++) {
    optimizer.step();
    losses.push(await model.forward(batch, { training: true, dropoutSeed: step }));
    await model.backward();
  }
  return { losses, logits, gradients };
}

describe.skipIf(!nativeBuilt)('QA-LoRA model on the native CPU backend (stories260K)', () => {
  it('matches the TypeScript ops: logits, loss, every dA and dB, and the loss after AdamW steps', async () => {
    const reference = await train(undefined);
    const [native, twoThreads] = await withOneAndTwoThreadsAsync(() => train(nativeCpuOps()));
    expect(relativeMaxError(native.logits, reference.logits)).toBeLessThanOrEqual(1e-5);
    native.losses.forEach((loss, step) => expect(Math.abs(loss - reference.losses[step]), `loss at step ${step + 1}`).toBeLessThanOrEqual(1e-5 * reference.losses[step]));
    let worst = 0;
    native.gradients.forEach((grad, p) => { worst = Math.max(worst, relativeMaxError(grad, reference.gradients[p])); });
    console.log(`native vs TypeScript: loss ${native.losses[0]} vs ${reference.losses[0]}, worst gradient error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-5);

    expect(twoThreads.logits).toEqual(native.logits);
    expect(twoThreads.losses).toEqual(native.losses);
    expect(twoThreads.gradients).toEqual(native.gradients);
  });

  it('refuses a float64 model with a message that says why', async () => {
    const model = new QaLoraModel(checkpoint, spec, { dtype: 'float64', ops: nativeCpuOps() });
    await expect(model.forward(batchWithMask())).rejects.toThrow(/native CPU backend computes in float32/);
  });
});
