// Held-out loss of stories260K quantized with RTN and with GPTQ (method = gptq) at 4, 3 and 2
// bits — not a test, the numbers of src/quant/GPTQ.md. Every model goes through the real spec
// path (frontEnd → setUpTraining → held-out loss, as `qalc eval` runs it, adapters at B = 0):
// the first 90% of TinyStories' validation head is the training data, which GPTQ calibrates on
// (`samples` random windows of seq_len), the last 10% is held out.
//   npx tsx test/bench/cpu/gptq-vs-rtn.ts [samples = 128] [seq_len = 256]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { evaluateRun } from '../../../src/train/evaluate-run.ts';
import { tinyStoriesPlan } from '../../support/tinystories-spec.ts';

const samples = Number(process.argv[2] ?? 128);
const seqLen = Number(process.argv[3] ?? 256);
const work = mkdtempSync(join(tmpdir(), 'qalc-gptq-bench-'));
const { ops } = cpuBackend();

async function heldOut(name: string, quant: string, overrides?: string): Promise<{ loss: number; tokens: number; seconds: number }> {
  const plan = tinyStoriesPlan(work, name, { quant, ...(overrides ? { overrides } : {}), seqLen, evalFraction: 0.1 });
  const started = performance.now();
  const evaluated = await evaluateRun({ plan, specDir: work, ops });
  return { loss: evaluated.loss, tokens: evaluated.tokens, seconds: (performance.now() - started) / 1000 };
}

const float = await heldOut('float', 'bits = 4  group = 16', 'override proj q, k, v, o, gate, up, down { quantize = false }');
const rows: string[] = [];
for (const bits of [4, 3, 2]) {
  const rtn = await heldOut(`rtn${bits}`, `bits = ${bits}  group = 16`);
  const gptq = await heldOut(`gptq${bits}`, `bits = ${bits}  group = 16  method = gptq  samples = ${samples}`);
  rows.push(`| ${bits} | ${rtn.loss.toFixed(4)} | ${gptq.loss.toFixed(4)} | ${(gptq.loss - rtn.loss).toFixed(4)} | ${((gptq.loss - float.loss) / (rtn.loss - float.loss) * 100).toFixed(0)}% | ${gptq.seconds.toFixed(1)} s |`);
}
console.log(`stories260K, group 16 (down: 43), held-out TinyStories: ${float.tokens} tokens; float32 model ${float.loss.toFixed(4)}; GPTQ calibrated on ${samples} windows of ${seqLen} tokens\n`);
console.log('| bits | RTN | GPTQ | GPTQ − RTN | GPTQ\'s share of RTN\'s loss increase | GPTQ load + eval |');
console.log('|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
