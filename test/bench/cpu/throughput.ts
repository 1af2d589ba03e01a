// Throughput of the CPU backends on stories260K — not a test, numbers for PERFORMANCE.md:
//   greedy decode tokens/s over 256 and 512 steps: LlamaForward (TypeScript) vs NativeLlamaForward, 1 and 2 threads;
//   training tokens/s (forward + backward + AdamW, 4-bit RTN base, QA-LoRA on all 7
//   projections, as src/train/bench.ts) at B×T = 4×32 and 8×64: TypeScript ops vs native ops.
//   npx tsx test/bench/cpu/throughput.ts [seconds per measurement = 3]
// Model and data are read from ../shared next to the repository.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { argmax } from '../../../src/model/generate.ts';
import { LlamaForward, type DecodeModel } from '../../../src/model/llama-forward.ts';
import { readLlama2cCheckpoint } from '../../../src/model/llama2c-checkpoint.ts';
import { readTokenizer } from '../../../src/model/read-tokenizer.ts';
import { createRng } from '../../../src/reference/random.ts';
import { AdamW, constantSchedule } from '../../../src/train/adamw.ts';
import { encodeDocuments, randomBatch } from '../../../src/train/batches.ts';
import type { TrainingOps } from '../../../src/runtime/ops.ts';
import { QaLoraModel } from '../../../src/train/qalora-model.ts';
import { specForEveryProjection } from '../../../src/train/qalora-spec.ts';
import { cpuAddon } from '../../../src/runtime/cpu/addon.ts';
import { NativeLlamaForward } from '../../../src/runtime/cpu/native-llama-forward.ts';
import { nativeCpuOps } from '../../../src/runtime/cpu/native-ops.ts';

const shared = (path: string) => fileURLToPath(new URL(`../../../../shared/${path}`, import.meta.url));
const seconds = Number(process.argv[2] ?? 3);

const checkpoint = readLlama2cCheckpoint(shared('models/stories260K/stories260K.bin'));
const tokenizer = readTokenizer(shared('models/stories260K/tok512.bin'), checkpoint.arch.vocab);
const stream = encodeDocuments(tokenizer, readFileSync(shared('data/tinyshakespeare.txt'), 'utf8').slice(0, 100_000));
const addon = cpuAddon();

/** Greedy decoding of `steps` positions from BOS (run.c's default is 256), repeated for `seconds`; the first pass warms up. */
function decodeTokensPerSecond(model: () => DecodeModel, steps: number): number {
  const pass = (m: DecodeModel) => {
    let token = 1;
    for (let pos = 0; pos < steps; pos++) token = argmax(m.forward(token, pos));
  };
  pass(model());
  let tokens = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    pass(model());
    tokens += steps;
  }
  return (tokens * 1000) / (performance.now() - start);
}

/** Training steps for `seconds` after two warm-up steps. */
async function trainTokensPerSecond(ops: TrainingOps | undefined, batchSize: number, seqLen: number): Promise<number> {
  const spec = specForEveryProjection(checkpoint.arch, (_, inFeatures) => ({
    bits: 4, group: inFeatures === checkpoint.arch.hiddenDim ? 43 : 16,
    adapter: { rank: 8, alpha: 16, dropout: 0.05, pooling: 'mean' },
  }));
  const model = new QaLoraModel(checkpoint, spec, { seed: 1, ...(ops ? { ops } : {}) });
  const optimizer = new AdamW(model.parameters(), { lr: constantSchedule({ peak: 1e-2, warmup: 3 }), maxGradNorm: 1 });
  const rng = createRng(7);
  const step = async (i: number) => {
    await model.forward(randomBatch(stream, batchSize, seqLen, rng), { training: true, dropoutSeed: i });
    await model.backward();
    optimizer.step();
  };
  await step(0);
  await step(1);
  let steps = 0;
  const start = performance.now();
  while (steps < 3 || performance.now() - start < seconds * 1000) await step(2 + steps++);
  return (steps * batchSize * seqLen * 1000) / (performance.now() - start);
}

const row = (label: string, value: number) => console.log(`${label.padEnd(44)} ${value.toFixed(0).padStart(7)} tokens/s`);

console.log(`stories260K on ${process.arch}, ${seconds} s per measurement\n`);
for (const steps of [256, 512]) {
  row(`decode ${steps} steps, TypeScript LlamaForward`, decodeTokensPerSecond(() => new LlamaForward(checkpoint), steps));
  for (const threads of [1, 2]) {
    addon.setThreads(threads);
    row(`decode ${steps} steps, native, ${threads} thread${threads > 1 ? 's' : ''}`, decodeTokensPerSecond(() => new NativeLlamaForward(checkpoint), steps));
  }
}
for (const [batchSize, seqLen] of [[4, 32], [8, 64]]) {
  console.log('');
  row(`train ${batchSize}×${seqLen}, TypeScript ops`, await trainTokensPerSecond(undefined, batchSize, seqLen));
  for (const threads of [1, 2]) {
    addon.setThreads(threads);
    row(`train ${batchSize}×${seqLen}, native ops, ${threads} thread${threads > 1 ? 's' : ''}`, await trainTokensPerSecond(nativeCpuOps(), batchSize, seqLen));
  }
}
addon.setThreads(1);
