// Training throughput of the CPU reference on stories260K: forward + backward + AdamW over
// random windows of tiny Shakespeare, 4-bit RTN base, QA-LoRA on all 7 projections.
//   npx tsx src/train/bench.ts [batch=4] [seqLen=32] [steps=30]
// Model and data are read from ../shared next to the repository (as the tests do).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readLlama2cCheckpoint } from '../model/llama2c-checkpoint.ts';
import { readTokenizer } from '../model/read-tokenizer.ts';
import { createRng } from '../reference/random.ts';
import { AdamW, constantSchedule } from './adamw.ts';
import { encodeDocuments, randomBatch } from './batches.ts';
import { QaLoraModel } from './qalora-model.ts';
import { specForEveryProjection } from './qalora-spec.ts';

const shared = (path: string) => fileURLToPath(new URL(`../../../shared/${path}`, import.meta.url));
const [batchSize, seqLen, steps] = [4, 32, 30].map((fallback, i) => Number(process.argv[2 + i] ?? fallback));

const checkpoint = readLlama2cCheckpoint(shared('models/stories260K/stories260K.bin'));
const tokenizer = readTokenizer(shared('models/stories260K/tok512.bin'), checkpoint.arch.vocab);
const stream = encodeDocuments(tokenizer, readFileSync(shared('data/tinyshakespeare.txt'), 'utf8').slice(0, 100_000));
const spec = specForEveryProjection(checkpoint.arch, (_, inFeatures) => ({
  bits: 4, group: inFeatures === checkpoint.arch.hiddenDim ? 43 : 16,
  adapter: { rank: 8, alpha: 16, dropout: 0.05, pooling: 'mean' },
}));
const model = new QaLoraModel(checkpoint, spec, { seed: 1 });
const optimizer = new AdamW(model.parameters(), { lr: constantSchedule({ peak: 1e-2, warmup: 3 }), maxGradNorm: 1 });
const rng = createRng(7);

let forwardMs = 0, backwardMs = 0, optimizerMs = 0, loss = NaN;
for (let step = 0; step < steps; step++) {
  const batch = randomBatch(stream, batchSize, seqLen, rng);
  const t0 = performance.now();
  loss = await model.forward(batch, { training: true, dropoutSeed: step });
  const t1 = performance.now();
  await model.backward();
  const t2 = performance.now();
  optimizer.step();
  const t3 = performance.now();
  // The first steps warm the JIT up; leave them out of the timing.
  if (step >= 3) { forwardMs += t1 - t0; backwardMs += t2 - t1; optimizerMs += t3 - t2; }
}
const tokens = (steps - 3) * batchSize * seqLen;
const totalMs = forwardMs + backwardMs + optimizerMs;
console.log(`stories260K, B=${batchSize} T=${seqLen}, ${steps - 3} timed steps, final loss ${loss.toFixed(3)}`);
console.log(`forward ${(forwardMs / (steps - 3)).toFixed(1)} ms, backward ${(backwardMs / (steps - 3)).toFixed(1)} ms, adamw ${(optimizerMs / (steps - 3)).toFixed(2)} ms per step`);
console.log(`training throughput: ${((tokens * 1000) / totalMs).toFixed(0)} tokens/s (forward only ${((tokens * 1000) / forwardMs).toFixed(0)} tokens/s)`);
