// A short QA-LoRA fine-tuning run on stories260K (trained on TinyStories) with a 4-bit RTN base:
// 30 AdamW steps on tiny Shakespeare, batch 4 × 32, must clearly lower the loss on held-out
// Shakespeare (the last 20K characters, never trained on).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readLlama2cCheckpoint } from '../../src/model/llama2c-checkpoint.ts';
import { readTokenizer } from '../../src/model/read-tokenizer.ts';
import { createRng } from '../../src/reference/random.ts';
import { AdamW, constantSchedule } from '../../src/train/adamw.ts';
import { encodeDocuments, randomBatch, sequentialBatches } from '../../src/train/batches.ts';
import { QaLoraModel } from '../../src/train/qalora-model.ts';
import { specForEveryProjection } from '../../src/train/qalora-spec.ts';
import { STORIES260K, TINY_SHAKESPEARE, TOK512 } from './tiny-model.ts';

describe('QA-LoRA fine-tuning of stories260K on tiny Shakespeare', () => {
  it('30 AdamW steps (4-bit base, adapters on all projections) lower the held-out loss clearly', async () => {
    const checkpoint = readLlama2cCheckpoint(STORIES260K);
    const tokenizer = readTokenizer(TOK512, checkpoint.arch.vocab);
    const text = readFileSync(TINY_SHAKESPEARE, 'utf8');
    const train = encodeDocuments(tokenizer, text.slice(0, 60_000));
    const heldOut = encodeDocuments(tokenizer, text.slice(-20_000));

    const spec = specForEveryProjection(checkpoint.arch, (_, inFeatures) => ({
      bits: 4, group: inFeatures === checkpoint.arch.hiddenDim ? 43 : 16,
      adapter: { rank: 8, alpha: 16, dropout: 0.05, pooling: 'mean' },
    }));
    const model = new QaLoraModel(checkpoint, spec, { seed: 1 });
    const evalBatches = sequentialBatches(heldOut, 4, 32).slice(0, 8);
    const heldOutLoss = async () => {
      let sum = 0;
      for (const batch of evalBatches) sum += await model.forward(batch);
      return sum / evalBatches.length;
    };

    const before = await heldOutLoss();
    const optimizer = new AdamW(model.parameters(), { lr: constantSchedule({ peak: 1e-2, warmup: 3 }), maxGradNorm: 1 });
    const rng = createRng(7);
    const trainLosses: number[] = [];
    const start = performance.now();
    for (let step = 0; step < 30; step++) {
      trainLosses.push(await model.forward(randomBatch(train, 4, 32, rng), { training: true, dropoutSeed: step }));
      await model.backward();
      optimizer.step();
    }
    const seconds = (performance.now() - start) / 1000;
    const after = await heldOutLoss();
    console.log(`held-out loss ${before.toFixed(3)} → ${after.toFixed(3)}; train loss ${trainLosses[0].toFixed(3)} → ` +
      `${trainLosses.at(-1)!.toFixed(3)}; ${(30 * 4 * 32 / seconds).toFixed(0)} training tokens/s`);
    expect(after).toBeLessThan(before - 0.5);
  });
});
