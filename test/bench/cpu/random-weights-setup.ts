// Host cost of `qalc train SPEC --random-weights` before its first step, on LLaMA-2-7B's shape
// (dim 4096, hidden 11008, vocab 32000, INT4 g32 + rank-64 adapters on every projection, fp16
// scales, as examples/llama2-7b-int4-g32.qal) with `layers` blocks: all 32 by default, fewer to
// extrapolate on a small machine (every block costs the same; the embedding and lm_head are
// drawn once). Not a test; its numbers go to random-weights-setup.md.
//   npx esbuild random-weights-setup=test/bench/cpu/random-weights-setup.ts \
//     random-weights-worker=src/train/random-weights-worker.ts --bundle --splitting --platform=node \
//     --format=esm --packages=external --outdir=node_modules/.cache/bench
//   node node_modules/.cache/bench/random-weights-setup.js [layers=32] [seqLen=2048] [--setup] [--one-thread]
// Bundled as the `qalc` command is, with its worker beside it (random-weights-parallel.ts); under
// tsx there is no worker file, so it draws on one thread, and every imported function is called
// through a getter, which costs more than the work here.
// Phases: the weights (embedding, blocks drawn and quantized a row at a time, lm_head), the
// QaLoraModel on them, the activations of one batch. --setup times setUpTraining as a whole
// instead (the same, plus the tokenizer and the Alpaca data). Wall and CPU time (CPU: this
// process's user + system, what a busy shared machine does not inflate as much), RSS after and
// the peak within the phase (/proc/self/status VmHWM, reset per phase by clear_refs 5; Linux).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { frontEnd } from '../../../src/compile.ts';
import { randomWeights } from '../../../src/model/random-weights.ts';
import { planToSpec } from '../../../src/train/plan-to-spec.ts';
import { QaLoraModel } from '../../../src/train/qalora-model.ts';
import { quantizeAsDrawn } from '../../../src/train/quantize-projection.ts';
import { quantizeInWorkers } from '../../../src/train/random-weights-parallel.ts';
import { setUpTraining } from '../../../src/train/trainer.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const [layers, seqLen] = [32, 2048].map((fallback, i) => Number(args[i] ?? fallback));
const wholeSetup = process.argv.includes('--setup');
const oneThread = process.argv.includes('--one-thread');
const shared = resolve('../shared');
const work = mkdtempSync(join(tmpdir(), 'qalc-random-setup-'));
const specPath = join(work, 'shape.qal');
writeFileSync(specPath, `spec llama2_7b_shape
model {
  dim = 4096  hidden_dim = 11008  layers = ${layers}  heads = 32  kv_heads = 32  vocab = 32000  context = 4096
  tokenizer = "${shared}/models/llama2-tokenizer/tokenizer.model"
}
quant { bits = 4  group = 32 }
adapter { kind = qalora  rank = 64  alpha = 16  dropout = 0.05 }
train {
  data = "${shared}/data/alpaca_en_demo.json"
  format = alpaca
  seq_len = ${seqLen}
  batch = 1
}
`);
const planned = frontEnd(specPath);
if (!planned.plan) throw new Error(planned.diagnostics.map((d) => d.message).join('; '));
const plan = planned.plan;
const arch = plan.model.architecture;

const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(2);
const status = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const cpuSeconds = () => { const { user, system } = process.cpuUsage(); return (user + system) / 1e6; };
const rows: string[] = [];
function phase<T>(name: string, run: () => T): T {
  writeFileSync('/proc/self/clear_refs', '5');
  const start = performance.now(), cpu = cpuSeconds();
  const result = run();
  rows.push(`| ${name} | ${((performance.now() - start) / 1000).toFixed(1)} s | ${(cpuSeconds() - cpu).toFixed(1)} s | ${gib(status('VmRSS'))} GiB | ${gib(status('VmHWM'))} GiB |`);
  return result;
}

let model: QaLoraModel;
const blockSeconds: number[] = [];
let blockClock = 'CPU';
if (wholeSetup) {
  model = phase('setUpTraining --random-weights', () => setUpTraining(plan, work, undefined, () => {}, 1)).model;
} else {
  const spec = planToSpec(plan);
  const workers = oneThread ? undefined : quantizeInWorkers(arch, 1, spec);
  console.log(workers ? `drawing on ${workers.threads} worker threads` : 'drawing on this thread');
  const quantize = workers?.quantize ?? quantizeAsDrawn(spec);
  if (workers) blockClock = 'wall';
  let blockStart = 0, block = -1;
    // The hook is called as each projection starts: block l's first call ends block l − 1.
  const timed: typeof quantize = (l, ...rest) => {
    if (l !== block) { const now = workers ? performance.now() / 1000 : cpuSeconds(); if (block >= 0) blockSeconds.push(now - blockStart); blockStart = now; block = l; }
    return quantize(l, ...rest);
  };
  const weights = phase(`weights: embedding, ${layers} blocks drawn + quantized, lm_head${workers ? ` (${workers.threads} workers; CPU is this thread's)` : ''}`, () => randomWeights(arch, 1, timed));
  workers?.close();
  model = phase('QaLoraModel (adapters, RoPE tables)', () => new QaLoraModel(weights, spec, { seed: 1 }));
}
// What a training step allocates first: the activations, host arrays a device backend never writes.
phase(`activations, batch 1 × seq ${seqLen}`, () => (model as unknown as { activationsFor(B: number, T: number): unknown }).activationsFor(1, seqLen));
console.log(`LLaMA-2-7B shape, ${layers} of 32 blocks, node ${process.version}, ${new Date().toISOString()}`);
console.log('| phase | wall | CPU | RSS after | peak RSS in phase |');
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(row);
if (blockSeconds.length > 0) console.log(`${blockClock} seconds per block (all but the last): ${blockSeconds.map((s) => s.toFixed(1)).join(', ')}`);
