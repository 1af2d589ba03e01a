// Host cost of `qalc train SPEC --random-weights` before the first step: time and resident
// memory of each phase of building LLaMA-2-7B's shape (dim 4096, hidden 11008, vocab 32000,
// INT4 g32 + rank-64 adapters on every projection, fp16 scales: examples/llama2-7b-int4-g32.qal)
// on seeded random weights, for `layers` blocks (all 32 by default; fewer to extrapolate on a
// small machine: every block costs the same). Not a test: numbers go to random-weights-setup.md.
//   npx tsx test/bench/cpu/random-weights-setup.ts [layers=32] [seqLen=2048]
// Peak RSS is /proc/self/status's VmHWM, reset before each phase (clear_refs 5), Linux only.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { frontEnd } from '../../../src/compile.ts';
import { setUpTraining } from '../../../src/train/trainer.ts';

const [layers, seqLen] = [32, 2048].map((fallback, i) => Number(process.argv[2 + i] ?? fallback));
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

const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(2);
const status = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const resetPeak = () => writeFileSync('/proc/self/clear_refs', '5');
const rows: string[] = [];
function phase<T>(name: string, work: () => T): T {
  resetPeak();
  const start = performance.now();
  const result = work();
  const seconds = (performance.now() - start) / 1000;
  rows.push(`| ${name} | ${seconds.toFixed(1)} s | ${gib(status('VmRSS'))} GiB | ${gib(status('VmHWM'))} GiB |`);
  return result;
}

const lines: string[] = [];
const setup = phase('setUpTraining --random-weights (draws, quantization, model)', () => setUpTraining(plan, work, undefined, (line) => lines.push(line), 1));
// What a training step would allocate first: the activations (host arrays a device backend never writes).
phase(`activations, batch 1 × seq ${seqLen}`, () => (setup.model as unknown as { activationsFor(B: number, T: number): unknown }).activationsFor(1, seqLen));
console.log(`LLaMA-2-7B shape, ${layers} of 32 blocks, node ${process.version}`);
console.log('| phase | time | RSS after | peak RSS in phase |');
console.log('|---|---|---|---|');
for (const row of rows) console.log(row);
