// The GGUF export in real llama.cpp: it loads, and its greedy text is qalc's. Runs only when
// LLAMA_SIMPLE names a llama-simple binary (build: see llama-cpp-comparison.md beside this file); skips loudly
// otherwise. Files of one fine-tuned stories260K:
//  - `--dequantize` (every projection F32, exactly qalc's float32 weights): llama.cpp's text
//    must equal `qalc generate`'s on the merged model, token for token;
//  - the default (Q4_1 where exact): llama.cpp must equal qalc run on the GGUF's own decoded
//    Q4_1 weights for most of the text — what is left is llama.cpp quantizing activations to
//    8 bits (Q8_1) for its Q4_1 dot products and summing in another order — and is compared
//    with the lossless merged model by common prefix (printed, not asserted beyond a floor);
//  - `--dequantize` again from a spec on the Hugging Face folder stories260K-hf, whose merged
//    model carries tokenizer.json: the GGUF's vocabulary comes from the folder's tokenizer.model,
//    and llama.cpp's text must again equal `qalc generate`'s.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportFormat, type ExportSource } from '../../src/export/formats.ts';
import { readGguf } from '../../src/export/gguf/read-gguf.ts';
import { GGUF_PROJECTION_NAMES } from '../../src/export/gguf/write-gguf.ts';
import { denseCheckpointOf, type MergedModel } from '../../src/export/merged-model.ts';
import { writeExport } from '../../src/export/write-export.ts';
import type { Llama2cCheckpoint, Tensor } from '../../src/model/llama2c-checkpoint.ts';
import { generate } from '../../src/model/generate.ts';
import { parseTokenizer } from '../../src/model/read-tokenizer.ts';
import { cpuBackend } from '../../src/runtime/cpu/backend.ts';
import { exportFromRun } from '../../src/train/export-run.ts';
import { PROJECTIONS } from '../../src/train/qalora-spec.ts';
import { HF_MODEL, ops, trainedRun, type TrainedRun } from './trained-run.ts';

const LLAMA_SIMPLE = process.env.LLAMA_SIMPLE;
const PROMPT = 'Once upon a time';
const NEW_TOKENS = 200;

if (!LLAMA_SIMPLE) {
  console.warn('\n*** SKIPPED: test/export/llama-cpp.test.ts needs LLAMA_SIMPLE=/path/to/llama-simple (see test/export/llama-cpp-comparison.md) ***\n');
}

/** llama-simple's greedy continuation, without the "<s> " it prints for BOS. */
function llamaCpp(model: string): string {
  const result = spawnSync(LLAMA_SIMPLE!, ['-m', model, '-n', String(NEW_TOKENS), PROMPT], { encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0) throw new Error(`llama-simple failed (${result.status}): ${result.stderr.slice(-2000)}`);
  return result.stdout.replace(/^<s> /, '').replace(/\n$/, '');
}

export function commonPrefix(a: string, b: string): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** `qalc generate`, greedy, on weights with the merged model's own tokenizer. */
function qalcGenerate(merged: MergedModel): (weights: Llama2cCheckpoint) => string {
  const tokenizer = parseTokenizer(merged.tokenizer!.bytes, merged.arch.vocab, merged.tokenizer!.name);
  const prompt = tokenizer.encode(PROMPT, { bos: false });
  const cpu = cpuBackend();
  return (weights) => generate(cpu.decoder(weights), tokenizer, { steps: prompt.length + NEW_TOKENS, temperature: 0, prompt }).text;
}

describe.skipIf(!LLAMA_SIMPLE)('a GGUF export in llama.cpp', () => {
  let run: TrainedRun;
  let merged: MergedModel;
  let qalcText: (weights: Llama2cCheckpoint) => string;
  beforeAll(async () => {
    run = await trainedRun({ steps: 40 });
    merged = (await exportFromRun(run.plan, run.work, run.checkpoint, ops)).source.merged;
    qalcText = qalcGenerate(merged);
  }, 180_000);

  it('F32: generates exactly the text qalc generates from the merged model', async () => {
    const out = join(run.work, 'gguf-f32');
    await writeExport(out, exportFormat('gguf'), { description: 'test', merged }, { dequantize: true });
    const ours = qalcText(denseCheckpointOf(merged));
    const theirs = llamaCpp(join(out, 'model.gguf'));
    console.log(`F32 GGUF: llama.cpp and qalc agree on ${commonPrefix(ours, theirs)} of ${ours.length} characters`);
    expect(theirs.startsWith(ours) || ours.startsWith(theirs)).toBe(true);
    expect(Math.min(ours.length, theirs.length)).toBeGreaterThan(100);
  });

  it('Q4_1: generates qalc\'s text from the same Q4_1 weights, and says how close it stays to the lossless model', async () => {
    const out = join(run.work, 'gguf-q4_1');
    await writeExport(out, exportFormat('gguf'), { description: 'test', merged });
    const gguf = await readGguf(join(out, 'model.gguf'));
    const dense = denseCheckpointOf(merged);
    // qalc's inference on the GGUF's own weights: Q4_1 decoded as ggml decodes it.
    const layers = dense.layers.map((layer, l) => {
      const replaced = { ...layer };
      for (const p of PROJECTIONS) {
        const stored = gguf.tensors.find((t) => t.name === `blk.${l}.${GGUF_PROJECTION_NAMES[p]}.weight`)!;
        const tensor: Tensor = { ...layer[p], data: stored.values };
        Object.assign(replaced, { [p]: tensor });
      }
      return { ...replaced, wq: replaced.q, wk: replaced.k, wv: replaced.v, wo: replaced.o, w1: replaced.gate, w2: replaced.down, w3: replaced.up };
    });
    const onQ4_1 = qalcText({ ...dense, layers });
    const lossless = qalcText(dense);
    const theirs = llamaCpp(join(out, 'model.gguf'));
    const sameWeights = commonPrefix(onQ4_1, theirs);
    const vsLossless = commonPrefix(lossless, theirs);
    console.log(`Q4_1 GGUF: llama.cpp agrees with qalc on the same Q4_1 weights for ${sameWeights} of ${onQ4_1.length} characters, with the lossless merged model for ${vsLossless} of ${lossless.length}; qalc on Q4_1 weights vs lossless: ${commonPrefix(onQ4_1, lossless)}`);
    console.log(`texts:\n  lossless: ${JSON.stringify(lossless)}\n  qalc on Q4_1: ${JSON.stringify(onQ4_1)}\n  llama.cpp Q4_1: ${JSON.stringify(theirs)}`);
    expect(theirs.startsWith(PROMPT)).toBe(true);
    expect(sameWeights).toBeGreaterThan(PROMPT.length + 20);
  });
});

describe.skipIf(!LLAMA_SIMPLE)('a GGUF export of a Hugging Face folder\'s model in llama.cpp', () => {
  let source: ExportSource;
  let run: TrainedRun;
  beforeAll(async () => {
    run = await trainedRun({ steps: 40, model: HF_MODEL });
    source = (await exportFromRun(run.plan, run.work, run.checkpoint, ops)).source;
  }, 180_000);

  async function compare(name: string, from: ExportSource, vocabulary: string): Promise<void> {
    const out = join(run.work, name);
    const written = await writeExport(out, exportFormat('gguf'), from, { dequantize: true });
    expect(written.notices.join('\n')).toContain(`vocabulary: ${vocabulary}`);
    const ours = qalcGenerate(from.merged)(denseCheckpointOf(from.merged));
    const theirs = llamaCpp(join(out, 'model.gguf'));
    console.log(`F32 GGUF of stories260K-hf, vocabulary from ${vocabulary}: llama.cpp and qalc agree on ${commonPrefix(ours, theirs)} of ${ours.length} characters\n  qalc:      ${JSON.stringify(ours)}\n  llama.cpp: ${JSON.stringify(theirs)}`);
    expect(theirs.startsWith(ours) || ours.startsWith(theirs)).toBe(true);
    expect(Math.min(ours.length, theirs.length)).toBeGreaterThan(100);
  }

  it('F32, its vocabulary from the folder\'s tokenizer.model: generates exactly the text qalc generates', async () => {
    expect(source.merged.tokenizer!.name).toBe('tokenizer.json');
    await compare('gguf-hf-f32', source, 'the SentencePiece model tokenizer.model of the checkpoint folder');
  });

  it('F32, its vocabulary from the merged model\'s tokenizer.json alone: the same', async () => {
    const { checkpointFiles: _, ...alone } = source;
    await compare('gguf-hf-json-f32', alone, 'the Hugging Face tokenizer tokenizer.json');
  });
});
