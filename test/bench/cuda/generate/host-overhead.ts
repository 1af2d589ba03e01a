// The host's share of a `qalc generate --backend cuda` token, measured without a GPU: the decode
// path (src/runtime/cuda/device-decode.ts) on the cuda device ops over a port that launches
// nothing (../idle-device.ts; a read-back answers ones). What is left of a token's time is the
// JavaScript that decides what to launch. Prints the median, mean and least host time a token
// over tokens 2… (the first uploads the weights), and the launches a token; the GPU's work of a
// 7B token at the weight-bandwidth roofline is ~0.9 ms (3.9 GB of INT4 g32 weights and bf16
// lm_head at 4.27 TB/s), so the host's must stay below it for the target. Not a CI test.
//
//   npx tsx test/bench/cuda/generate/host-overhead.ts SPEC [TOKENS]   # a spec with a checkpoint,
//       or one without (random weights, seeded by its train.seed), e.g. a 7B shape with 1 block
import { performance } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { kvCacheShape, OpsDecoder } from '../../../../src/runtime/cuda/device-decode.ts';
import { specQaLoraModelWithRun } from '../../../../src/train/spec-model.ts';
import { idleDeviceOps } from '../idle-device.ts';

const [specArg, tokensArg] = process.argv.slice(2);
if (specArg === undefined) throw new Error('usage: host-overhead.ts SPEC [TOKENS]');
const tokens = Number(tokensArg ?? 32);
const { specPath, plan, ops } = await idleDeviceOps(specArg);
const { model, weights } = specQaLoraModelWithRun(plan, dirname(specPath), join(dirname(specPath), 'no-run', 'checkpoint.safetensors'), ops, { randomWeights: !plan.model.checkpoint });
const decoder = new OpsDecoder(model, weights, ops, ops.kvCache(kvCacheShape(model.arch, tokens)));
const times: number[] = [];
const launches: number[] = [];
for (let pos = 0; pos < tokens; pos++) {
  const before = ops.launches();
  const started = performance.now();
  decoder.forward(1, pos);
  times.push(performance.now() - started);
  launches.push(ops.launches() - before);
}
const steady = times.slice(1).sort((a, b) => a - b);
const mean = steady.reduce((a, b) => a + b, 0) / steady.length;
console.log(`${plan.spec}: ${model.arch.layers} blocks, ${tokens} tokens; host ms a token (tokens 2…): median ${steady[Math.floor(steady.length / 2)]!.toFixed(3)}, ` +
  `mean ${mean.toFixed(3)}, least ${steady[0]!.toFixed(3)}; first ${times[0]!.toFixed(1)}; launches a token ${launches.at(-1)} (${(launches.at(-1)! / model.arch.layers).toFixed(1)} a block)`);
// A mean far above the median is a few slow tokens (a garbage collection, a pool growing): which.
const slowest = times.map((ms, pos) => ({ ms, pos })).slice(1).sort((a, b) => b.ms - a.ms).slice(0, 5);
console.log(`slowest tokens: ${slowest.map(({ ms, pos }) => `${ms.toFixed(1)} ms at ${pos}`).join(', ')}`);
