// Which call sites launch which kernels in a cuda training step, counted without a GPU: the
// trainer on the cuda device ops over the idle port (idle-device.ts), every launch charged to its
// kernel symbol and the first frame of qalc's own code above the launch machinery. Prints the
// launches of the last step (the ones before it include the set-up and the first step's warm-up),
// most frequent first. Not a CI test.
//
//   npx tsx test/bench/cuda/launch-sites.ts SPEC [STEPS]    # e.g. .device/train7b/llama2-7b-l4.qal
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { deviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { Progress, type ProgressUpdate } from '../../../src/train/progress.ts';
import { train } from '../../../src/train/trainer.ts';
import { idlePort, type IdleCounts } from './idle-device.ts';

const [specArg, stepsArg] = process.argv.slice(2);
if (specArg === undefined) throw new Error('usage: launch-sites.ts SPEC [STEPS]');
const steps = Number(stepsArg ?? 2);
const specPath = resolve(specArg);
const front = frontEnd(specPath);
if (front.plan === undefined) throw new Error(front.diagnostics.map((d) => d.message).join('\n'));
const { manifest } = await loadCompiledKernels(front.plan, { targets: ['cuda'] });
const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
const counts: IdleCounts = { uploads: 0, downloads: 0, copies: 0, fills: 0, converts: 0, graphLaunches: 0 };
const port = idlePort(counts);
let countsBefore = { ...counts }, stepCounts = { ...counts };
let step = new Map<string, number>();
const launch = port.launch.bind(port);
port.launch = (fn, grid, block, shared, parameters) => {
  // The first frame outside the port and launcher files names the op that asked.
  const frames = (new Error().stack ?? '').split('\n').slice(2).map((l) => l.trim().replace(/^at /, '').replace(/\(.*\/src\//, '(').replace(/:\d+\)$/, ')'));
  // The first frame outside the launch machinery names the op that asked; the first frame in the
  // trainer's model (train/), the step of the model it served (a conversion's caller, say).
  const own = frames.find((f) => !/(launcher|manifest-launch|resident-port|cuda-ops|idle-device|launch-sites)\.ts/.test(f)) ?? '?';
  const model = frames.find((f) => f.includes('(train/')) ?? '';
  const site = model === '' || model === own ? own : `${own} < ${model}`;
  const key = `${fn.symbol}  ${site}`;
  step.set(key, (step.get(key) ?? 0) + 1);
  launch(fn, grid, block, shared, parameters);
};
const ops = deviceOps(port, { kernels: manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda').map(image), modelOps: manifest.modelOps.map(image) }, cpuBackend().ops, 'bf16');
// A step's launches end at its progress update (the evaluations after the last step are not in it).
let last = step;
class StepMarks extends Progress {
  override update(u: ProgressUpdate): void {
    last = step;
    step = new Map();
    stepCounts = { uploads: counts.uploads - countsBefore.uploads, downloads: counts.downloads - countsBefore.downloads, copies: counts.copies - countsBefore.copies, fills: counts.fills - countsBefore.fills, converts: counts.converts - countsBefore.converts, graphLaunches: counts.graphLaunches - countsBefore.graphLaunches };
    countsBefore = { ...counts };
    super.update(u);
  }
}
await train({ plan: front.plan, specDir: dirname(specPath), out: mkdtempSync(join(tmpdir(), 'qalc-launch-sites-')), steps, ops, evalBatches: 1, randomWeights: {}, progress: new StepMarks() });
const rows = [...last].sort((a, b) => b[1] - a[1]);
console.log(`launches in the last step: ${rows.reduce((s, [, n]) => s + n, 0)}; uploads ${stepCounts.uploads}, downloads ${stepCounts.downloads}, device copies ${stepCounts.copies}, fills ${stepCounts.fills}`);
for (const [key, n] of rows) console.log(`${String(n).padStart(6)}  ${key}`);
