// The host's share of a `qalc generate --backend cuda` token, measured without a GPU: the decode
// path (src/runtime/cuda/device-decode.ts) on the cuda device ops over a port that launches
// nothing (../idle-device.ts; a read-back answers ones), twice: with every op launched from the
// host each token (QALC_CUDA_GRAPH=0), and with the step captured once in a CUDA graph and
// replayed (the default; the idle port's replay does nothing, so what is left is the host's
// side of a replayed token: the step buffer's 8-byte upload, the graph launch, the logits'
// read-back, and generate()'s sampling is not in it). Prints, for each, the median, mean and
// least host time a token over the tokens after the warm-up (CLI's: the weights go up, and the
// step is captured), and the launches a token from the host; the GPU's work of a 7B token at the
// weight-bandwidth roofline is ~0.9 ms (3.9 GB of INT4 g32 weights and bf16 lm_head at
// 4.27 TB/s), so the host's must stay below it for the target. Not a CI test.
//
//   npx tsx test/bench/cuda/generate/host-overhead.ts SPEC [TOKENS]   # a spec with a checkpoint,
//       or one without (random weights, seeded by its train.seed), e.g. a 7B shape with 1 block
import { performance } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { kvCacheShape, OpsDecoder } from '../../../../src/runtime/cuda/device-decode.ts';
import { describeDecodeGraph } from '../../../../src/cli/commands/generate-cuda.ts';
import { specQaLoraModelWithRun } from '../../../../src/train/spec-model.ts';
import { idleDeviceOps } from '../idle-device.ts';

const [specArg, tokensArg] = process.argv.slice(2);
if (specArg === undefined) throw new Error('usage: host-overhead.ts SPEC [TOKENS]');
const tokens = Number(tokensArg ?? 32);

for (const graph of [false, true]) {
  const { specPath, plan, ops, counts } = await idleDeviceOps(specArg);
  const { model, weights } = specQaLoraModelWithRun(plan, dirname(specPath), join(dirname(specPath), 'no-run', 'checkpoint.safetensors'), ops, { randomWeights: !plan.model.checkpoint });
  const decoder = new OpsDecoder(model, weights, ops, ops.decodeSteps(kvCacheShape(model.arch, tokens), model.arch.ropeTheta), { graph });
  const warmStarted = performance.now();
  const warmUps = decoder.warmUp(1);
  const warmUp = performance.now() - warmStarted;
  const times: number[] = [];
  const launches: number[] = [];
  const uploads: number[] = [];
  for (let pos = 0; pos < tokens; pos++) {
    const [before, uploadsBefore] = [ops.launches(), counts.uploads];
    const started = performance.now();
    decoder.forward(1, pos);
    times.push(performance.now() - started);
    launches.push(ops.launches() - before);
    uploads.push(counts.uploads - uploadsBefore);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const mean = times.reduce((a, b) => a + b, 0) / times.length;
  const mode = graph ? 'CUDA graph' : 'QALC_CUDA_GRAPH=0';
  console.log(`${plan.spec} (${mode}): ${model.arch.layers} blocks, ${tokens} tokens after ${warmUps} warm-up forwards (${warmUp.toFixed(0)} ms); host ms a token: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(3)}, ` +
    `mean ${mean.toFixed(3)}, least ${sorted[0]!.toFixed(3)}; launches from the host a token ${launches.at(-1)} (${(launches.at(-1)! / model.arch.layers).toFixed(1)} a block), uploads a token ${uploads.at(-1)}`);
  console.log(`  ${describeDecodeGraph(decoder.graphState())}`);
  // A mean far above the median is a few slow tokens (a garbage collection, a pool growing): which.
  const slowest = times.map((ms, pos) => ({ ms, pos })).sort((a, b) => b.ms - a.ms).slice(0, 5);
  console.log(`  slowest tokens: ${slowest.map(({ ms, pos }) => `${ms.toFixed(2)} ms at ${pos}`).join(', ')}`);
}
