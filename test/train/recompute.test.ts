// Activation recomputation (the train block's `recompute`): a recomputed block keeps only its
// input in the forward and runs its forward again before its backward, so the loss and every
// adapter gradient are those of the model that kept everything — bit for bit, with dropout on
// (the recomputation draws the forward's masks again), on the TypeScript ops and the native cpu
// ops, over two steps in a row and with gradient accumulation; a mixed spec's blocks (other
// group sizes and ranks) share arrays only with blocks of their shapes. A checkpoint that did not
// record `recompute` (written before it existed) resumes at its default without a change.
import { describe, expect, it } from 'vitest';
import { readLlama2cCheckpoint } from '../../src/model/llama2c-checkpoint.ts';
import { createRng } from '../../src/reference/random.ts';
import { cpuBackend } from '../../src/runtime/cpu/backend.ts';
import type { TrainingOps } from '../../src/runtime/ops.ts';
import { TYPESCRIPT_OPS } from '../../src/runtime/typescript/ops.ts';
import { QaLoraModel, type Batch } from '../../src/train/qalora-model.ts';
import { specForEveryProjection, type QaLoraSpec } from '../../src/train/qalora-spec.ts';
import { recomputationOf, recomputedBlockCount } from '../../src/train/recompute.ts';
import { settingChanges } from '../../src/train/run-identity.ts';
import { STORIES260K } from './tiny-model.ts';

const checkpoint = readLlama2cCheckpoint(STORIES260K);
const arch = checkpoint.arch; // 5 blocks, dim 64, hidden 172

/** Every projection adapted with dropout; `mixed`: the blocks differ in group size and rank. */
function specOf(mixed: boolean): QaLoraSpec {
  return specForEveryProjection(arch, (projection, inFeatures, layer) => ({
    bits: 4,
    group: inFeatures === arch.hiddenDim ? 43 : mixed && layer % 2 === 1 ? 32 : 16,
    adapter: { rank: mixed ? 2 + (layer % 3) : 4, alpha: 8, dropout: projection === 'v' ? 0 : 0.2, pooling: 'mean' },
  }));
}

function randomBatch(seed: number, B: number, T: number): Batch {
  const rng = createRng(seed);
  const n = B * T;
  return {
    batchSize: B, seqLen: T,
    tokens: Array.from({ length: n }, () => rng.int(arch.vocab)),
    targets: Array.from({ length: n }, () => rng.int(arch.vocab)),
    lossMask: Array.from({ length: n }, (_, i) => (i % 7 === 3 ? 0 : 1)),
  };
}

interface Step {
  readonly loss: number;
  readonly grads: Float32Array[];
}

/**
 * Two training steps (other dropout seeds and batches; the second accumulates a micro-batch
 * onto the first's gradients), B moved off zero so every gradient of A is non-zero.
 */
async function twoSteps(ops: TrainingOps, spec: QaLoraSpec, recomputedBlocks: number, recomputeMlp = false, recomputeQkv = false): Promise<Step[]> {
  const model = new QaLoraModel(checkpoint, spec, { ops, seed: 3, recomputedBlocks, recomputeMlp, recomputeQkv });
  const rng = createRng(11);
  for (const { adapter } of model.adapters()) for (let i = 0; i < adapter.b.length; i++) adapter.b[i] = 0.2 * rng.normal();
  const steps: Step[] = [];
  const record = async (loss: number) => steps.push({ loss, grads: model.parameters().map((p) => Float32Array.from(p.grad)) });
  const first = await model.forward(randomBatch(1, 2, 9), { training: true, dropoutSeed: 77 });
  await model.backward();
  await record(first);
  const second = await model.forward(randomBatch(2, 3, 6), { training: true, dropoutSeed: 78 });
  await model.backward({ accumulate: true });
  await record(second);
  return steps;
}

const OPS: readonly (readonly [string, TrainingOps])[] = [['TypeScript', TYPESCRIPT_OPS], ['native cpu', cpuBackend().ops]];

describe.each(OPS)('recomputed blocks (and recompute = mlp, projections) on the %s ops', (_name, ops) => {
  it.each([[false, 'one shape'], [true, 'a mixed spec']] as const)('give the loss and every adapter gradient bit for bit, with dropout (%s: %s)', async (mixed, _what) => {
    const spec = specOf(mixed);
    const kept = await twoSteps(ops, spec, 0);
    expect(kept[0]!.grads.every((g) => g.some((x) => x !== 0))).toBe(true);
    // q, k and v recomputed alone and with 2 whole blocks too (those blocks run their whole forward again instead).
    for (const [recomputed, mlp, qkv] of [[arch.layers, false, false], [2, false, false], [0, true, false], [0, true, true], [0, false, true], [2, true, true]] as const) {
      const steps = await twoSteps(ops, spec, recomputed, mlp, qkv);
      expect(steps.map((s) => s.loss), `${recomputed} blocks, mlp ${mlp}, qkv ${qkv}`).toEqual(kept.map((s) => s.loss));
      steps.forEach((step, s) => step.grads.forEach((g, i) => expect(g, `step ${s + 1}, parameter ${i}`).toEqual(kept[s]!.grads[i])));
    }
  }, 60_000);
});

describe('recomputed blocks hold one set of activations', () => {
  it('every recomputed block\'s arrays are the same ones but its input; the others keep their own', async () => {
    const model = new QaLoraModel(checkpoint, specOf(false), { recomputedBlocks: 3 });
    await model.forward(randomBatch(1, 1, 4));
    const blocks = (model as unknown as { activations: { blocks: Record<string, unknown>[] } }).activations.blocks;
    const arrays = (block: Record<string, unknown>) => Object.entries(block).filter(([key]) => key !== 'projections');
    const savedOf = (block: Record<string, unknown>) => Object.values(block.projections as Record<string, { saved: { u: unknown; v: unknown } }>).flatMap((p) => [p.saved.u, p.saved.v]);
    for (const l of [1, 2]) {
      // (On the host ops a block's normInput is its input itself: they keep no 16-bit copy.)
      for (const [key, array] of arrays(blocks[l]!)) expect(array === blocks[0]![key], `block ${l} ${key}`).toBe(key !== 'input' && key !== 'normInput');
      savedOf(blocks[l]!).forEach((array, i) => expect(array).toBe(savedOf(blocks[0]!)[i]));
    }
    // normAtt, normFfn and hidden were shared by every block before: the rest is the block's own.
    for (const [key, array] of arrays(blocks[3]!)) expect(array === blocks[0]![key], `block 3 ${key}`).toBe(['normAtt', 'normFfn', 'hidden'].includes(key));
    savedOf(blocks[3]!).forEach((array, i) => expect(array).not.toBe(savedOf(blocks[0]!)[i]));
  });

  it('with recompute = projections q, k and v are one set for every block, and each block keeps its own normed attention input', async () => {
    const model = new QaLoraModel(checkpoint, specOf(false), { recomputeMlp: true, recomputeQkv: true });
    await model.forward(randomBatch(1, 1, 4));
    const blocks = (model as unknown as { activations: { blocks: Record<string, unknown>[] } }).activations.blocks;
    const shared = ['q', 'k', 'v', 'gate', 'up', 'hidden'];
    for (const l of [1, 4]) {
      for (const key of [...shared, 'normAtt', 'normFfn', 'attention', 'probs']) expect(blocks[l]![key] === blocks[0]![key], `block ${l} ${key}`).toBe(shared.includes(key));
    }
  });

  it('refuses a count that is not a number of the model\'s blocks', () => {
    expect(() => new QaLoraModel(checkpoint, specOf(false), { recomputedBlocks: 6 })).toThrow(/from 0 to the model's 5 blocks, got 6/);
  });
});

describe('the train block\'s recompute as a number of blocks', () => {
  it('none is 0, blocks every block, a number that many', () => {
    expect([undefined, 'none', 'blocks', 0, 3, 32].map((setting) => recomputedBlockCount(setting, 32))).toEqual([0, 0, 32, 0, 3, 32]);
    expect(() => recomputedBlockCount(33, 32)).toThrow(/from 0 to the model's 32/);
  });
  it('mlp recomputes no whole block, the gate and up projections of all', () => {
    expect(recomputationOf('mlp', 32)).toEqual({ blocks: 0, mlp: true, qkv: false });
    expect(recomputationOf('blocks', 32)).toEqual({ blocks: 32, mlp: false, qkv: false });
    expect(recomputationOf(undefined, 32)).toEqual({ blocks: 0, mlp: false, qkv: false });
  });
  it('projections recomputes no whole block, gate and up and q, k and v of all', () => {
    expect(recomputationOf('projections', 32)).toEqual({ blocks: 0, mlp: true, qkv: true });
    expect(recomputedBlockCount('projections', 32)).toBe(0);
  });
});

describe('a checkpoint written before recompute existed', () => {
  it('is resumed without a change when the spec leaves recompute at its default, and names one otherwise', () => {
    const recorded = { train: 'present', 'train.steps': 2 };
    expect(settingChanges(recorded, { ...recorded, 'train.recompute': 'none' })).toEqual([]);
    expect(settingChanges(recorded, { ...recorded, 'train.recompute': 'blocks' })).toEqual(['train.recompute (unset) → blocks']);
    expect(settingChanges({ ...recorded, 'train.recompute': 'blocks' }, { ...recorded, 'train.recompute': 'none' })).toEqual(['train.recompute blocks → none']);
  });
});
