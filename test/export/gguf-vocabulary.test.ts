// The GGUF vocabulary of models whose tokenizer is not llama2.c's, read back with
// @huggingface/gguf: stories260K as a Hugging Face folder (tokenizer.json and tokenizer.model)
// gets, through the folder's SentencePiece model, exactly the tokenizer arrays llama.cpp's
// converter wrote into ../shared/models/stories260K/stories260K.gguf — and the same from its
// tokenizer.json alone, whose scores are rebuilt from its merges. On LLaMA 2's 32,000-piece
// tokenizer the rebuilt scores make llama.cpp's merge loop (run.c's, ScoredBpeTokenizer) encode
// as the tokenizer.json does; the converter's placeholder −1000 would not.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportFormat, type ExportSource } from '../../src/export/formats.ts';
import { readGguf, type GgufContents } from '../../src/export/gguf/read-gguf.ts';
import { ggufVocabulary } from '../../src/export/gguf/llama-vocab.ts';
import { hfJsonVocabulary } from '../../src/export/gguf/vocab-hf-json.ts';
import { sentencePieceVocabulary } from '../../src/export/gguf/vocab-sentencepiece.ts';
import { GgufExportError, writeGguf } from '../../src/export/gguf/write-gguf.ts';
import { writeExport } from '../../src/export/write-export.ts';
import { readHfTokenizer } from '../../src/model/hf-tokenizer.ts';
import { ScoredBpeTokenizer } from '../../src/model/scored-bpe.ts';
import { exportFromRun } from '../../src/train/export-run.ts';
import { sharedFile, TINY_SHAKESPEARE } from '../train/tiny-model.ts';
import { HF_MODEL, ops, trainedRun, type TrainedRun } from './trained-run.ts';

const REFERENCE = sharedFile('models/stories260K/stories260K.gguf');
const HF_DIR = sharedFile('models/stories260K-hf');
const LLAMA2 = sharedFile('models/llama2-tokenizer');
const ARRAYS = ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type'];

let run: TrainedRun;
let source: ExportSource;
let reference: GgufContents;
beforeAll(async () => {
  run = await trainedRun({ model: HF_MODEL });
  source = (await exportFromRun(run.plan, run.work, run.checkpoint, ops)).source;
  reference = await readGguf(REFERENCE);
}, 120_000);

async function exported(name: string, from: ExportSource): Promise<{ gguf: GgufContents; notices: string[] }> {
  const out = join(run.work, name);
  await writeExport(out, exportFormat('gguf'), from);
  const report = JSON.parse(readFileSync(join(out, 'export.json'), 'utf8')) as { notices: string[] };
  return { gguf: await readGguf(join(out, 'model.gguf')), notices: report.notices };
}

describe('a Hugging Face folder\'s model in GGUF', () => {
  it('carries its tokenizer.json, and the folder\'s tokenizer.model', () => {
    expect(source.merged.tokenizer!.name).toBe('tokenizer.json');
    expect(source.checkpointFiles!.has('tokenizer.model')).toBe(true);
  });

  it('through the folder\'s SentencePiece model: the reference\'s tokenizer arrays, value for value, and the converter\'s keys', async () => {
    const { gguf, notices } = await exported('gguf-spm', source);
    expect(notices.join('\n')).toContain('vocabulary: the SentencePiece model tokenizer.model of the checkpoint folder (512 pieces)');
    for (const key of ARRAYS) expect(gguf.metadata[key]!.value, key).toEqual(reference.metadata[key]!.value);
    expect((gguf.metadata['tokenizer.ggml.tokens']!.value as string[]).length).toBe(512);
    expect(gguf.metadata['tokenizer.ggml.model']!.value).toBe('llama');
    expect(gguf.metadata['tokenizer.ggml.pre']!.value).toBe('default');
    for (const [key, id] of [['unknown', 0], ['bos', 1], ['eos', 2]] as const) expect(gguf.metadata[`tokenizer.ggml.${key}_token_id`]!.value, key).toBe(id);
    // stories260K-hf's tokenizer_config.json sets neither add_bos_token nor add_eos_token, and its
    // add_prefix_space is null: the converter writes none of them (llama.cpp's defaults: BOS, a space prefix).
    for (const key of ['add_bos_token', 'add_eos_token', 'add_space_prefix']) expect(gguf.metadata[`tokenizer.ggml.${key}`], key).toBeUndefined();
  });

  it('from the tokenizer.json alone (a merged model brings no folder): the same arrays, scores rebuilt from its merges', async () => {
    const { checkpointFiles: _, ...alone } = source;
    const { gguf, notices } = await exported('gguf-json', alone);
    expect(notices.join('\n')).toContain('vocabulary: the Hugging Face tokenizer tokenizer.json (512 tokens, scores from its 165 merges)');
    for (const key of ARRAYS) expect(gguf.metadata[key]!.value, key).toEqual(reference.metadata[key]!.value);
  });

  it('from a spec\'s SentencePiece tokenizer (tok512.model): the same arrays', async () => {
    const merged = { ...source.merged, tokenizer: { name: 'tok512.model', bytes: new Uint8Array(readFileSync(sharedFile('models/stories260K/tok512.model'))) } };
    const { gguf, notices } = await exported('gguf-tok512-model', { description: 'test', merged });
    expect(notices.join('\n')).toContain('vocabulary: the SentencePiece model tok512.model (512 pieces)');
    for (const key of ARRAYS) expect(gguf.metadata[key]!.value, key).toEqual(reference.metadata[key]!.value);
  });

  it('writes add_bos_token and add_eos_token where tokenizer_config.json sets them, as the converter does', async () => {
    const config = { ...JSON.parse(readFileSync(join(HF_DIR, 'tokenizer_config.json'), 'utf8')), add_bos_token: true, add_eos_token: false };
    const files = new Map(source.checkpointFiles);
    files.set('tokenizer_config.json', new TextEncoder().encode(JSON.stringify(config)));
    const { gguf } = await exported('gguf-flags', { ...source, checkpointFiles: files });
    expect(gguf.metadata['tokenizer.ggml.add_bos_token']).toEqual({ value: true, type: 7 });
    expect(gguf.metadata['tokenizer.ggml.add_eos_token']).toEqual({ value: false, type: 7 });
  });

  it('falls back to the tokenizer.json, saying so, when the folder\'s tokenizer.model holds other pieces', () => {
    const files = new Map(source.checkpointFiles);
    files.set('tokenizer.model', readFileSync(join(LLAMA2, 'tokenizer.model')));
    const result = ggufVocabulary(source.merged.tokenizer!, 512, files);
    expect(result.vocabulary.source).toContain('the Hugging Face tokenizer tokenizer.json');
    expect(result.notices.join('\n')).toMatch(/the checkpoint folder's tokenizer.model is not the merged model's tokenizer.json/);
  });
});

describe('a tokenizer.json the GGUF export cannot write', () => {
  const withJson = (json: unknown) => ({ ...source.merged, tokenizer: { name: 'tokenizer.json', bytes: new TextEncoder().encode(JSON.stringify(json)) } });
  const hf = JSON.parse(readFileSync(join(HF_DIR, 'tokenizer.json'), 'utf8')) as { model: Record<string, unknown>; decoder: unknown };

  it('is refused by name: byte-level BPE (GPT-2, LLaMA 3)', () => {
    const byteLevel = { ...hf, model: { ...hf.model, byte_fallback: false }, decoder: { type: 'ByteLevel' } };
    expect(() => writeGguf(join(run.work, 'byte-level.gguf'), withJson(byteLevel))).toThrow(GgufExportError);
    expect(() => writeGguf(join(run.work, 'byte-level2.gguf'), withJson(byteLevel))).toThrow(/tokenizer.json: a byte-level BPE tokenizer.json .*`gpt2` vocabulary/);
  });

  it('is refused by name: Unigram', () => {
    expect(() => writeGguf(join(run.work, 'unigram.gguf'), withJson({ ...hf, model: { type: 'Unigram', vocab: [] } })))
      .toThrow(/not a LLaMA SentencePiece-BPE tokenizer.json \(model "Unigram"/);
  });
});

describe('LLaMA 2\'s tokenizer.json as a GGUF vocabulary', () => {
  const json = readFileSync(join(LLAMA2, 'tokenizer.json'));
  const config = JSON.parse(readFileSync(join(LLAMA2, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  const fromJson = hfJsonVocabulary(json, 'tokenizer.json', 32000, config);
  const fromModel = sentencePieceVocabulary(readFileSync(join(LLAMA2, 'tokenizer.model')), 'tokenizer.model', 32000, config);
  // llama.cpp's SentencePiece encoder is run.c's: the adjacent pair whose joined piece scores highest.
  const llamaCpp = (scores: readonly number[]) => new ScoredBpeTokenizer({
    pieces: fromJson.tokens.map((t) => Buffer.from(t, 'utf8').toString('latin1').replaceAll('\xe2\x96\x81', ' ')),
    scores: Float32Array.from(scores), bos: 1, eos: 2, unk: 0, fingerprint: new Uint8Array(),
    matchable: (id) => fromJson.tokenTypes[id] === 1, removeExtraWhitespaces: false,
  });
  const lines = readFileSync(TINY_SHAKESPEARE, 'utf8').split('\n').filter((l) => l.length > 0).slice(0, 400);

  it('has the SentencePiece model\'s tokens and types, and the converter\'s add_bos_token / add_eos_token', () => {
    expect(fromJson.tokens).toEqual(fromModel.tokens);
    expect(fromJson.tokenTypes).toEqual(fromModel.tokenTypes);
    expect([fromJson.addBos, fromJson.addEos, fromModel.addBos, fromModel.addEos]).toEqual([true, false, true, false]);
  });

  it('scores that make llama.cpp\'s merge loop encode as the tokenizer.json does, where the converter\'s placeholder does not', () => {
    const hfTokenizer = readHfTokenizer(join(LLAMA2, 'tokenizer.json'));
    const rebuilt = llamaCpp(fromJson.scores);
    const placeholder = llamaCpp(fromJson.scores.map(() => -1000));
    let placeholderWrong = 0;
    for (const line of lines) {
      const expected = hfTokenizer.encode(line);
      expect(rebuilt.encode(line), line).toEqual(expected);
      if (JSON.stringify(placeholder.encode(line)) !== JSON.stringify(expected)) placeholderWrong++;
    }
    console.log(`LLaMA 2 vocabulary, ${lines.length} lines of tiny Shakespeare: rebuilt scores encode all as tokenizer.json does; the converter's −1000 placeholder differs on ${placeholderWrong}`);
    expect(placeholderWrong).toBeGreaterThan(lines.length / 10);
  });
});
