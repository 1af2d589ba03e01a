// The host's share of a cuda training step, measured without a GPU: `qalc train`'s trainer on
// the cuda device ops over a port that launches nothing (every kernel, copy and GEMM returns at
// once; a read-back answers ones, so the loss and the gradient norm stay finite). What is left
// of a step's time is the JavaScript that decides what to launch: argument binding, the device
// arrays' bookkeeping, the host's dropout masks, and the packing of each launch's parameters as
// the driver binding packs them (ParameterPacker: all but the addon call itself). It prints every
// step's time, then for steps 2+ (step 1 allocates the step's buffers) the median, mean and least
// (a step's time here varies 2–3× with the load of the machine: compare runs of many steps), and
// the launches and the copies (device→device, host→device, device→host, fills) a step. On the H200 the GPU's work of a 4-block 7B-shaped step is ~30–40 ms; the
// host's, measured here (plus the addon's calls, which launch nothing here), must stay below it.
// Not a CI test.
//
//   npx tsx test/bench/cuda/host-overhead.ts SPEC [STEPS]        # a spec with model shapes, e.g.
//       .device/train7b/llama2-7b-l4.qal (test/bench/cuda/train/prepare.sh writes it)
//   node --import tsx --cpu-prof test/bench/cuda/host-overhead.ts SPEC    # where the time goes
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { DeviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { train } from '../../../src/train/trainer.ts';
import { idleDeviceOps, type IdleCounts } from './idle-device.ts';

const [specArg, stepsArg] = process.argv.slice(2);
if (specArg === undefined) throw new Error('usage: host-overhead.ts SPEC [STEPS]');
const { specPath, plan, ops, counts } = await idleDeviceOps(specArg);
// The launches so far at each optimizer step's end: the launches a step say the launch sequence
// did not change. (Not the process's CPU time: process.cpuUsage() takes ~1 ms in this process,
// inside the step's time, and it tracked the wall time here anyway.)
const launchesAtStep: number[] = [];
const countsAtStep: IdleCounts[] = [];
const measured: DeviceOps = {
  ...ops,
  adamw(parameters, options) {
    const optimizer = ops.adamw!(parameters, options);
    const step = optimizer.step.bind(optimizer);
    optimizer.step = () => {
      const report = step();
      launchesAtStep.push(ops.launches());
      countsAtStep.push({ ...counts });
      return report;
    };
    return optimizer;
  },
};
const out = mkdtempSync(join(tmpdir(), 'qalc-host-overhead-'));
const run = await train({ plan, specDir: dirname(specPath), out, steps: Number(stepsArg ?? 4), ops: measured, evalBatches: 1, randomWeights: {} });
const steps = readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; seconds: number; backward?: string });
const ms = steps.map((s) => s.seconds * 1000);
/** The median, mean and least of `values`. */
const summary = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const median = (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
  return `median ${median.toFixed(2)} ms, mean ${(sorted.reduce((a, b) => a + b, 0) / sorted.length).toFixed(2)} ms, least ${sorted[0]!.toFixed(2)} ms`;
};
const launchesAStep = new Set(launchesAtStep.slice(1).map((n, i) => n - launchesAtStep[i]!));
console.log(`host time a step (no GPU work): ${ms.map((m, i) => `${m.toFixed(1)} ms${steps[i]!.backward !== undefined ? ` (${steps[i]!.backward})` : ''}`).join(', ')}; ${ops.launches()} launches`);
if (run.stepGraph !== undefined) console.log(run.stepGraph);
if (ms.length > 1) {
  console.log(`steps 2–${ms.length}: ${summary(ms.slice(1))}; launches a step: ${[...launchesAStep].join(', ')}`);
  const aStep = (kind: keyof IdleCounts) => [...new Set(countsAtStep.slice(1).map((c, i) => c[kind] - countsAtStep[i]![kind]))].join(', ');
  console.log(`a step: copies device→device ${aStep('copies')}, host→device ${aStep('uploads')}, device→host ${aStep('downloads')}, fills ${aStep('fills')}, convert launches ${aStep('converts')}`);
}
