// The whole model: a fresh adapter (B = 0) is the quantized base; the unquantized model without
// adapters is LlamaForward, position by position; and the gradients of every A and B match
// finite differences on a tiny random model in float64.
import { describe, expect, it } from 'vitest';
import { LlamaForward } from '../../src/model/llama-forward.ts';
import { readLlama2cCheckpoint } from '../../src/model/llama2c-checkpoint.ts';
import { readTokenizer } from '../../src/model/read-tokenizer.ts';
import { createRng } from '../../src/reference/random.ts';
import { QaLoraModel, type Batch } from '../../src/train/qalora-model.ts';
import { specForEveryProjection, type AdapterSpec } from '../../src/train/qalora-spec.ts';
import { randomCheckpoint, STORIES260K, TINY_ARCH, TOK512 } from './tiny-model.ts';
import { relativeMaxError } from '../support/relative-error.ts';

const checkpoint = readLlama2cCheckpoint(STORIES260K);
const tokenizer = readTokenizer(TOK512, checkpoint.arch.vocab);
const arch = checkpoint.arch;
// stories260K: dim 64 (group 16 → L = 4), hidden 172 = 4·43 (down: group 43 → L = 4).
const groupFor = (inFeatures: number) => (inFeatures === arch.hiddenDim ? 43 : 16);
const ADAPTER: AdapterSpec = { rank: 4, alpha: 8, dropout: 0, pooling: 'mean' };

function textBatch(texts: string[], seqLen: number): Batch {
  const tokens = new Int32Array(texts.length * seqLen);
  texts.forEach((text, b) => {
    const encoded = tokenizer.encode(text);
    if (encoded.length < seqLen) throw new Error(`"${text}" has only ${encoded.length} tokens`);
    tokens.set(encoded.slice(0, seqLen), b * seqLen);
  });
  return { batchSize: texts.length, seqLen, tokens };
}

const batch = textBatch([
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
  'The dog ran to the tree and barked at the cat, who was sitting on a big branch and looking down.',
], 20);

describe('QA-LoRA model on stories260K', () => {
  it('with B = 0 computes exactly the quantized base model\'s logits, and not once B moves', async () => {
    const spec = (adapter: AdapterSpec | null) =>
      specForEveryProjection(arch, (_, inFeatures) => ({ bits: 4, group: groupFor(inFeatures), adapter }));
    const base = new QaLoraModel(checkpoint, spec(null));
    const adapted = new QaLoraModel(checkpoint, spec(ADAPTER), { seed: 3 });
    expect(adapted.parameters()).toHaveLength(5 * 7 * 2);
    await base.forward(batch);
    await adapted.forward(batch);
    expect(adapted.logits).toEqual(base.logits);

    adapted.blocks[2].down.layer.adapter!.b[5] = 0.1;
    await adapted.forward(batch);
    expect(adapted.logits).not.toEqual(base.logits);
  });

  it('unquantized and without adapters reproduces LlamaForward\'s logits at every position (1e-4)', async () => {
    const model = new QaLoraModel(checkpoint, specForEveryProjection(arch, () => ({ bits: null, group: 1, adapter: null })));
    await model.forward(batch);
    const reference = new LlamaForward(checkpoint);
    let worst = 0;
    for (let b = 0; b < batch.batchSize; b++) {
      for (let t = 0; t < batch.seqLen; t++) {
        const expected = reference.forward(batch.tokens[b * batch.seqLen + t], t);
        const row = (b * batch.seqLen + t) * arch.vocab;
        for (let v = 0; v < arch.vocab; v++) worst = Math.max(worst, Math.abs(model.logits[row + v] - expected[v]));
      }
    }
    console.log(`max |logit − LlamaForward logit| over ${batch.batchSize}×${batch.seqLen} positions: ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  });

  it('refuses a group size that does not divide a projection\'s in-features, naming it', async () => {
    const spec = specForEveryProjection(arch, () => ({ bits: 4, group: 16, adapter: ADAPTER }));
    expect(() => new QaLoraModel(checkpoint, spec)).toThrow(/group size 16 does not divide in_features 172 of layers\.0\.down/);
  });

  it('4-bit quantization moves the logits, 8-bit much less', async () => {
    const plain = new QaLoraModel(checkpoint, specForEveryProjection(arch, () => ({ bits: null, group: 1, adapter: null })));
    await plain.forward(batch);
    const difference = async (bits: 4 | 8) => {
      const model = new QaLoraModel(checkpoint, specForEveryProjection(arch, (_, k) => ({ bits, group: groupFor(k), adapter: null })));
      await model.forward(batch);
      let worst = 0;
      model.logits.forEach((value: number, i: number) => { worst = Math.max(worst, Math.abs(value - plain.logits[i])); });
      return worst;
    };
    const [four, eight] = [await difference(4), await difference(8)];
    expect(eight).toBeGreaterThan(0);
    expect(eight * 8).toBeLessThan(four);
  });
});

describe('QA-LoRA model gradients (tiny random model, float64)', () => {
  it('match finite differences on random entries of every A and B, with dropout and a loss mask', async () => {
    const tiny = randomCheckpoint(TINY_ARCH, 21);
    const spec = specForEveryProjection(TINY_ARCH, (projection) => ({
      bits: projection === 'k' ? 8 : 4,
      group: 4, // dim 8 → L = 2, hidden 12 → L = 3
      adapter: { rank: 2, alpha: 3, dropout: projection === 'up' ? 0 : 0.25, pooling: projection === 'o' ? 'sum' : 'mean' },
    }));
    const model = new QaLoraModel(tiny, spec, { dtype: 'float64', seed: 5 });
    const rng = createRng(8);
    // B = 0 would make every dA vanish; give the adapters something to propagate through.
    for (const { adapter } of model.adapters()) for (let i = 0; i < adapter.b.length; i++) adapter.b[i] = 0.3 * rng.normal();
    const B = 2, T = 5;
    const tinyBatch: Batch = {
      batchSize: B, seqLen: T,
      tokens: Array.from({ length: B * T }, () => rng.int(TINY_ARCH.vocab)),
      targets: Array.from({ length: B * T }, () => rng.int(TINY_ARCH.vocab)),
      lossMask: [0, 0, 1, 1, 1, 0, 1, 1, 1, 1],
    };
    const loss = () => model.forward(tinyBatch, { training: true, dropoutSeed: 99 });
    await loss();
    await model.backward();

    const analytic: number[] = [];
    const numeric: number[] = [];
    for (const parameter of model.parameters()) {
      for (let sample = 0; sample < 3; sample++) {
        const index = rng.int(parameter.value.length);
        const single = parameter.value.subarray(index, index + 1) as Float64Array;
        numeric.push(await finiteDifference(loss, single, 1e-5));
        analytic.push(parameter.grad[index]);
      }
    }
    expect(analytic.some((g) => Math.abs(g) > 1e-3)).toBe(true);
    expect(relativeMaxError(Float64Array.from(analytic), Float64Array.from(numeric))).toBeLessThan(1e-6);
  });

  it('float32 and float64 models agree on the loss and the gradients', async () => {
    const tiny = randomCheckpoint(TINY_ARCH, 22);
    const spec = specForEveryProjection(TINY_ARCH, () => ({ bits: 4, group: 4, adapter: { rank: 2, alpha: 4, dropout: 0, pooling: 'mean' } }));
    const models = [new QaLoraModel(tiny, spec, { dtype: 'float32', seed: 1 }), new QaLoraModel(tiny, spec, { dtype: 'float64', seed: 1 })];
    const rng = createRng(3);
    const bValues = Array.from({ length: 1000 }, () => 0.2 * rng.normal());
    const tinyBatch: Batch = { batchSize: 1, seqLen: 7, tokens: [1, 5, 3, 9, 2, 2, 7], targets: [5, 3, 9, 2, 2, 7, 0] };
    const results = await Promise.all(models.map(async (model) => {
      for (const { adapter } of model.adapters()) adapter.b.forEach((_, i) => { adapter.b[i] = bValues[i]; });
      const loss = await model.forward(tinyBatch);
      await model.backward();
      return { loss, grads: Float64Array.from(model.parameters().flatMap((p) => [...p.grad])) };
    }));
    expect(Math.abs(results[0].loss - results[1].loss)).toBeLessThan(1e-5);
    expect(relativeMaxError(results[0].grads, results[1].grads)).toBeLessThan(1e-4);
  });
});

/** The central difference of an asynchronous loss in the one-element `param`. */
async function finiteDifference(loss: () => Promise<number>, param: Float64Array, h: number): Promise<number> {
  const saved = param[0];
  param[0] = saved + h;
  const plus = await loss();
  param[0] = saved - h;
  const minus = await loss();
  param[0] = saved;
  return (plus - minus) / (2 * h);
}
