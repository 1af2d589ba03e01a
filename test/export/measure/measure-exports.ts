// Measures what each export format keeps of a fine-tuned model, for the README:
//   npx tsx test/export/measure/measure-exports.ts SPEC RUN_DIR [LLAMA_SIMPLE]
// Held-out loss over the spec's whole held-out split of: the unmerged adapters, qalc's format,
// the GGUF's own weights (Q4_1 decoded as ggml decodes it), and the file sizes; with a
// llama-simple binary, also llama.cpp's greedy text against qalc's.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { frontEnd } from '../../../src/compile.ts';
import { exportFormat } from '../../../src/export/formats.ts';
import { readGguf } from '../../../src/export/gguf/read-gguf.ts';
import { GGUF_PROJECTION_NAMES } from '../../../src/export/gguf/write-gguf.ts';
import { denseCheckpointOf, readMergedModel } from '../../../src/export/merged-model.ts';
import { writeExport } from '../../../src/export/write-export.ts';
import { generate } from '../../../src/model/generate.ts';
import type { Llama2cCheckpoint } from '../../../src/model/llama2c-checkpoint.ts';
import { parseTokenizer } from '../../../src/model/read-tokenizer.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { loadAdapters } from '../../../src/train/checkpoint.ts';
import { denseModel } from '../../../src/train/dense-model.ts';
import { exportFromRun } from '../../../src/train/export-run.ts';
import { heldOutLoss } from '../../../src/train/held-out-loss.ts';
import { PROJECTIONS } from '../../../src/train/qalora-spec.ts';
import { setUpTraining } from '../../../src/train/trainer.ts';

const [specPath, runDir, llamaSimple] = process.argv.slice(2);
if (!specPath || !runDir) throw new Error('usage: measure-exports.ts SPEC RUN_DIR [LLAMA_SIMPLE]');
const plan = frontEnd(specPath).plan!;
const specDir = dirname(specPath);
const { ops, decoder } = cpuBackend();
const checkpoint = join(runDir, 'checkpoint.safetensors');
const setup = setUpTraining(plan, specDir, ops);
const batches = setup.dataset.evalBatches(Number(setup.settings.batch), Number(setup.settings.seq_len));
loadAdapters(checkpoint, plan, setup.model);
const adapters = await heldOutLoss(setup.model, batches);

const out = mkdtempSync(join(tmpdir(), 'qalc-measure-'));
const { source } = await exportFromRun(plan, specDir, checkpoint, ops);
const exported = async (format: string, options = {}) => (await writeExport(join(out, format + JSON.stringify(options).replace(/\W/g, '')), exportFormat(format), source, options)).out;
const qalcDir = await exported('qalc');
const qalcModel = denseCheckpointOf(readMergedModel(join(qalcDir, 'model.safetensors')));
const qalcLoss = await heldOutLoss(denseModel(qalcModel, ops), batches);
const ggufDir = await exported('gguf');
const gguf = await readGguf(join(ggufDir, 'model.gguf'));
const onGguf: Llama2cCheckpoint = {
  ...qalcModel,
  layers: qalcModel.layers.map((layer, l) => {
    const replaced: Record<string, unknown> = { ...layer };
    for (const p of PROJECTIONS) replaced[p] = { ...layer[p], data: gguf.tensors.find((t) => t.name === `blk.${l}.${GGUF_PROJECTION_NAMES[p]}.weight`)!.values };
    return { ...layer, ...replaced, wq: replaced.q, wk: replaced.k, wv: replaced.v, wo: replaced.o, w1: replaced.gate, w2: replaced.down, w3: replaced.up } as typeof layer;
  }),
};
const ggufLoss = await heldOutLoss(denseModel(onGguf, ops), batches);
const size = (path: string) => statSync(path).size;
const rel = (a: number) => (Math.abs(a - adapters.loss) / adapters.loss).toExponential(2);
console.log(`spec ${plan.spec}, run ${runDir}: held-out ${adapters.tokens} tokens`);
console.log(`| model | held-out loss | relative to the adapters | file |`);
console.log(`|---|---|---|---|`);
console.log(`| unmerged adapters (qalc eval) | ${adapters.loss.toFixed(6)} | — | checkpoint ${size(checkpoint)} B |`);
console.log(`| qalc format | ${qalcLoss.loss.toFixed(6)} | ${rel(qalcLoss.loss)} | ${size(join(qalcDir, 'model.safetensors'))} B |`);
console.log(`| GGUF weights (Q4_1 decoded) | ${ggufLoss.loss.toFixed(6)} | ${rel(ggufLoss.loss)} | ${size(join(ggufDir, 'model.gguf'))} B |`);
const f32Dir = await exported('gguf', { dequantize: true });
console.log(`| GGUF --dequantize (F32) | (= qalc format's weights) | | ${size(join(f32Dir, 'model.gguf'))} B |`);

if (llamaSimple) {
  const tokenizer = parseTokenizer(source.merged.tokenizer!.bytes, source.merged.arch.vocab, 'tokenizer');
  const prompt = 'Once upon a time';
  const promptTokens = tokenizer.encode(prompt, { bos: false });
  const n = 256 - promptTokens.length - 1;
  const qalcText = (w: Llama2cCheckpoint) => generate(decoder(w), tokenizer, { steps: promptTokens.length + n, temperature: 0, prompt: promptTokens }).text;
  const llama = (path: string) => spawnSync(llamaSimple, ['-m', path, '-n', String(n), prompt], { encoding: 'utf8' }).stdout.replace(/^<s> /, '').replace(/\n$/, '');
  const prefix = (a: string, b: string) => { let i = 0; while (i < a.length && i < b.length && a[i] === b[i]) i++; return i; };
  const lossless = qalcText(qalcModel);
  const q41 = qalcText(onGguf);
  const llamaF32 = llama(join(f32Dir, 'model.gguf'));
  const llamaQ41 = llama(join(ggufDir, 'model.gguf'));
  console.log(`\ngreedy, prompt ${JSON.stringify(prompt)}, ${n} new tokens (qalc stops at BOS as run.c does, llama-simple at EOS):`);
  console.log(`- llama.cpp on the F32 GGUF vs qalc generate on the qalc format: common prefix ${prefix(lossless, llamaF32)} of ${lossless.length} characters`);
  console.log(`- qalc on the GGUF's Q4_1 weights vs qalc on the qalc format: ${prefix(lossless, q41)} of ${lossless.length}`);
  console.log(`- llama.cpp on the Q4_1 GGUF vs qalc on the same Q4_1 weights: ${prefix(q41, llamaQ41)} of ${q41.length}`);
  console.log(`\nqalc:            ${JSON.stringify(lossless)}\nllama.cpp F32:   ${JSON.stringify(llamaF32)}\nllama.cpp Q4_1:  ${JSON.stringify(llamaQ41)}`);
}
