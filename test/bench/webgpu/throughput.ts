// Throughput of the webgpu training backend on stories260K — not a test, numbers for the report:
// training tokens/s (forward + backward + AdamW) of examples/stories260k.qal's plan (4-bit RTN
// base, QA-LoRA rank 4 on all 7 projections, group 16 / down 43) at a few batch shapes, with the
// quantized linear layers on the spec's compiled kernels and, for comparison, on the runtime's
// own op kernels; and where a step's time goes by op: the host time of each op (it submits
// without waiting, so the device's time shows up where the model waits: the loss and
// syncToHost), then, with a wait after every op, each op's device time.
//   node --max-opt=2 --import tsx test/bench/webgpu/throughput.ts [seconds per measurement = 5]
// Model and data are read from ../shared next to the repository.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { frontEnd } from '../../../src/compile.ts';
import { readLlama2cCheckpoint } from '../../../src/model/llama2c-checkpoint.ts';
import { readTokenizer } from '../../../src/model/read-tokenizer.ts';
import { createRng } from '../../../src/reference/random.ts';
import { AdamW, constantSchedule } from '../../../src/train/adamw.ts';
import { encodeDocuments, randomBatch } from '../../../src/train/batches.ts';
import type { TrainingOps } from '../../../src/runtime/ops.ts';
import { QaLoraModel } from '../../../src/train/qalora-model.ts';
import { planToSpec } from '../../../src/train/plan-to-spec.ts';
import { compiledWgslKernels } from '../../../src/runtime/webgpu/compiled-kernels.ts';
import { describeCompiledLinearStats } from '../../../src/runtime/compiled-linear.ts';
import { WEBGPU_WORDING } from '../../../src/runtime/webgpu/webgpu-port.ts';
import { openWebGpu } from '../../../src/runtime/webgpu/device.ts';
import { webGpuOps } from '../../../src/runtime/webgpu/webgpu-ops.ts';

const shared = (path: string) => fileURLToPath(new URL(`../../../../shared/${path}`, import.meta.url));
const seconds = Number(process.argv[2] ?? 5);

const checkpoint = readLlama2cCheckpoint(shared('models/stories260K/stories260K.bin'));
const tokenizer = readTokenizer(shared('models/stories260K/tok512.bin'), checkpoint.arch.vocab);
const stream = encodeDocuments(tokenizer, readFileSync(shared('data/tinyshakespeare.txt'), 'utf8').slice(0, 100_000));
const { plan } = frontEnd(fileURLToPath(new URL('../../../examples/stories260k.qal', import.meta.url)));
if (plan === undefined) throw new Error('examples/stories260k.qal does not check');
const spec = planToSpec(plan);

/** The same ops, each call timed under its name (after waiting for the device, with `wait`). */
function timed(ops: TrainingOps, totals: Map<string, { ms: number; calls: number }>, wait?: () => Promise<unknown>): TrainingOps {
  const wrapped: Record<string, unknown> = { name: ops.name };
  for (const [name, op] of Object.entries(ops)) {
    if (typeof op !== 'function') continue;
    wrapped[name] = async (...args: unknown[]) => {
      const start = performance.now();
      const result = await (op as (...a: unknown[]) => unknown)(...args);
      await wait?.();
      const total = totals.get(name) ?? { ms: 0, calls: 0 };
      total.ms += performance.now() - start;
      total.calls++;
      totals.set(name, total);
      return result;
    };
  }
  return wrapped as unknown as TrainingOps;
}

const gpu = await openWebGpu();
const waitForDevice = () => gpu.device.queue.onSubmittedWorkDone();
console.log(`stories260K training on the webgpu backend (${gpu.adapterInfo.description}), ${seconds} s per measurement\n`);
const variants = [
  ['linear layers on the compiled kernels', webGpuOps(gpu.device, (await compiledWgslKernels(plan)).kernels)],
  ['linear layers on the op kernels', webGpuOps(gpu.device)],
] as const;
for (const [variant, ops] of variants) for (const [batchSize, seqLen, wait] of [[2, 16], [4, 32], [8, 64], [8, 64, waitForDevice]] as const) {
  const totals = new Map<string, { ms: number; calls: number }>();
  const model = new QaLoraModel(checkpoint, spec, { seed: 1, ops: timed(ops, totals, wait) });
  const optimizer = new AdamW(model.parameters(), { lr: constantSchedule({ peak: 1e-2, warmup: 3 }), maxGradNorm: 1 });
  const rng = createRng(7);
  const step = async (i: number) => {
    await model.forward(randomBatch(stream, batchSize, seqLen, rng), { training: true, dropoutSeed: i });
    await model.backward();
    optimizer.step();
  };
  await step(0); // compiles the pipelines and uploads the frozen weights
  totals.clear();
  let steps = 0;
  const start = performance.now();
  while (steps < 2 || performance.now() - start < seconds * 1000) await step(1 + steps++);
  const ms = performance.now() - start;
  console.log(`${variant}, train ${batchSize}×${seqLen}${wait ? ', waiting for the device after every op' : ''}: ${((steps * batchSize * seqLen * 1000) / ms).toFixed(0)} tokens/s (${(ms / steps).toFixed(0)} ms a step)`);
  const byTime = [...totals].sort((a, b) => b[1].ms - a[1].ms);
  for (const [name, { ms: opMs, calls }] of byTime) {
    console.log(`  ${name.padEnd(22)} ${(opMs / steps).toFixed(1).padStart(7)} ms a step, ${(calls / steps).toFixed(0).padStart(3)} calls, ${((opMs / calls) * 1000).toFixed(0).padStart(6)} µs a call`);
  }
}
for (const [variant, ops] of variants) if (ops.linearStats) console.log(`${variant}: ${describeCompiledLinearStats(ops.linearStats, WEBGPU_WORDING)}`);
gpu.destroy();
