// The three tokenizer files qalc reads — a Hugging Face tokenizer.json, a SentencePiece .model,
// llama2.c's tokenizer.bin — give the same ids where their libraries do, each derived on its own
// path (tokenizer.json through @huggingface/tokenizers' merges; .model and .bin through run.c's
// score-ordered merge loop); and each bad file is refused naming it.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseLlama2cTokenizer } from '../../src/model/llama2c-tokenizer.ts';
import { readAnyTokenizer, readTokenizer } from '../../src/model/read-tokenizer.ts';
import { parseSentencePieceModel } from '../../src/model/sentencepiece-model.ts';
import { TokenizerError, type Tokenizer } from '../../src/model/tokenizer.ts';

const shared = (path: string) => fileURLToPath(new URL(`../../../shared/${path}`, import.meta.url));
const TOK512_BIN = shared('models/stories260K/tok512.bin');
const TOK512_MODEL = shared('models/stories260K/tok512.model');
const TOK512_JSON = shared('models/stories260K-hf/tokenizer.json');
const LLAMA2_JSON = shared('models/llama2-tokenizer/tokenizer.json');
const LLAMA2_MODEL = shared('models/llama2-tokenizer/tokenizer.model');
const work = mkdtempSync(join(tmpdir(), 'qalc-tokenizers-'));

/** Paragraphs of tiny Shakespeare, as the trainer feeds them (batches.ts encodeDocuments). */
const paragraphs = readFileSync(shared('data/tinyshakespeare.txt'), 'utf8').slice(0, 150_000)
  .split(/\n\s*\n/).map((p) => p.trim()).filter((p) => p.length > 0);

function differences(a: Tokenizer, b: Tokenizer, texts: readonly string[]): string[] {
  return texts.filter((text) => JSON.stringify(a.encode(text)) !== JSON.stringify(b.encode(text)));
}

describe('the 512-piece tokenizer of stories260K', () => {
  const bin = readAnyTokenizer(TOK512_BIN);
  const json = readAnyTokenizer(TOK512_JSON);
  const model = readAnyTokenizer(TOK512_MODEL);

  it('tokenizer.json gives run.c\'s ids (tok512.bin) on tiny Shakespeare, and decodes them back', () => {
    expect(paragraphs.length).toBeGreaterThan(900);
    expect(differences(json, bin, paragraphs)).toEqual([]);
    for (const text of paragraphs.slice(0, 200)) expect(json.decode(json.encode(text))).toBe(text);
    expect([json.vocabSize, json.bos, json.eos]).toEqual([512, 1, 2]);
  });

  it('tok512.model holds tok512.bin\'s pieces and scores (▁ read as a space; BOS and EOS as SentencePiece names them)', () => {
    const fromBin = parseLlama2cTokenizer(readFileSync(TOK512_BIN), 'tok512.bin');
    const fromModel = parseSentencePieceModel(readFileSync(TOK512_MODEL), 'tok512.model');
    expect(fromModel.pieces.length).toBe(512);
    fromModel.pieces.forEach((piece, id) => { if (id !== 1 && id !== 2) expect(piece).toBe(fromBin.pieces[id]); });
    expect(Array.from(fromModel.scores)).toEqual(Array.from(fromBin.scores));
  });

  it('tok512.model encodes as SentencePiece does: run.c\'s ids, with extra spaces removed (remove_extra_whitespaces, its default)', () => {
    // tok512.model leaves remove_extra_whitespaces at SentencePiece's default, true; llama2.c's
    // run.c and transformers' conversion (tokenizer.json) keep every space.
    const collapsed = (text: string) => text.replace(/ {2,}/g, ' ').replace(/^ | $/g, '');
    const spaced = paragraphs.filter((p) => collapsed(p) !== p);
    expect(differences(model, bin, paragraphs)).toEqual(spaced);
    for (const text of spaced) expect(model.encode(text)).toEqual(bin.encode(collapsed(text)));
    expect(model.encode('a  b ')).toEqual(model.encode('a b'));
  });

  it('a control piece is never matched in text: "<s>" is spelled out, not BOS', () => {
    const ids = model.encode('<s>', { bos: false });
    expect(ids).not.toContain(1);
    expect(model.decode(ids)).toBe('<s>');
  });

  it('BOS and EOS as asked, by every reader', () => {
    for (const t of [bin, json, model]) {
      expect(t.encode('Hi', { bos: false, eos: true }).at(-1)).toBe(2);
      expect(t.encode('Hi')[0]).toBe(1);
      expect(t.encode('Hi', { bos: false })[0]).not.toBe(1);
      expect(t.decode([])).toBe('');
    }
  });
});

describe('the 32,000-piece LLaMA 2 tokenizer', () => {
  const json = readTokenizer(LLAMA2_JSON, 32_000);
  const model = readTokenizer(LLAMA2_MODEL, 32_000);

  it('gives LLaMA\'s well-known ids', () => {
    expect(json.encode('Hello world')).toEqual([1, 15043, 3186]);
    expect(model.encode('Hello world')).toEqual([1, 15043, 3186]);
  });

  it('tokenizer.json (its merges) and tokenizer.model (run.c\'s loop over its scores) agree on tiny Shakespeare', () => {
    expect(differences(json, model, paragraphs.slice(0, 300))).toEqual([]);
    for (const text of paragraphs.slice(0, 300)) {
      expect(json.decode(json.encode(text))).toBe(text);
      expect(model.decode(model.encode(text))).toBe(text);
    }
  });

  it('round-trips text outside the vocabulary through byte pieces', () => {
    const text = 'Ünïcödé, 猫 and 🐱 — tabs\tand  two spaces';
    expect(differences(json, model, [text])).toEqual([]);
    expect(json.decode(json.encode(text))).toBe(text);
  });

  it('refuses a model of another vocabulary, naming both', () => {
    expect(() => readTokenizer(LLAMA2_JSON, 512, 'stories260K.bin')).toThrow(/tokenizer\.json: the tokenizer has 32000 tokens but stories260K\.bin has a vocabulary of 512/);
  });
});

describe('bad tokenizer files', () => {
  const write = (name: string, bytes: Uint8Array | string) => { const path = join(work, name); writeFileSync(path, bytes); return path; };
  const refused = (path: string, message: RegExp) => {
    expect(() => readAnyTokenizer(path)).toThrow(TokenizerError);
    expect(() => readAnyTokenizer(path)).toThrow(message);
  };

  it('a missing file or a folder without a tokenizer', () => {
    refused(join(work, 'none.json'), /none\.json: cannot read the tokenizer: no such file/);
    refused(join(work, 'none.model'), /none\.model: cannot read the tokenizer: no such file/);
    refused(work, /a folder without tokenizer\.json or tokenizer\.model/);
    expect(readAnyTokenizer(shared('models/stories260K-hf')).vocabSize).toBe(512);
  });

  it('tokenizer.json: not JSON, not a tokenizer, a model type the library lacks, a BOS it does not hold', () => {
    refused(write('broken.json', '{"model": '), /broken\.json: the tokenizer is not valid JSON/);
    refused(write('array.json', '[1, 2]'), /array\.json: the tokenizer is not a JSON object/);
    refused(write('nomodel.json', '{"version": "1.0"}'), /nomodel\.json: it has no "model"/);
    refused(write('odd.json', JSON.stringify({ added_tokens: [], model: { type: 'Quantum' } })), /odd\.json: its model type "Quantum" is not one @huggingface\/tokenizers runs \(BPE, Unigram, WordPiece\)/);
    refused(write('nodecoder.json', JSON.stringify({ added_tokens: [], model: { type: 'BPE', vocab: {}, merges: [] } })), /nodecoder\.json: @huggingface\/tokenizers cannot build this tokenizer: .*decoder/);
    const tokenizer = JSON.parse(readFileSync(TOK512_JSON, 'utf8')) as { added_tokens: { content: string }[]; model: { vocab: Record<string, number> } };
    tokenizer.added_tokens = tokenizer.added_tokens.filter((t) => t.content !== '<s>');
    delete tokenizer.model.vocab['<s>'];
    refused(write('nobos.json', JSON.stringify(tokenizer)), /nobos\.json: its bos_token '<s>' is not in the vocabulary/);
  });

  it('a SentencePiece .model: truncated, not a model, a Unigram model, another normalization rule', () => {
    const bytes = readFileSync(TOK512_MODEL);
    refused(write('cut.model', bytes.subarray(0, 3000)), /cut\.model: the file ends inside a protobuf field: not a SentencePiece model/);
    refused(write('text.model', 'hello'), /text\.model: .*not a SentencePiece model/);
    refused(write('tok512.bin.model', readFileSync(TOK512_BIN)), /tok512\.bin\.model: .*not a SentencePiece model/);
    // trainer_spec.model_type (field 3, varint) is 2 (BPE) in tok512.model: make it 1 (Unigram).
    const unigram = Buffer.from(bytes);
    const at = unigram.indexOf(Buffer.from([0x18, 0x02]), unigram.indexOf(Buffer.from('data/tok512')));
    unigram[at + 1] = 0x01;
    refused(write('unigram.model', unigram), /unigram\.model: a SentencePiece Unigram model: .*give the tokenizer\.json/);
    const nfkc = Buffer.from(bytes);
    nfkc.write('nmt_nfkc', nfkc.indexOf(Buffer.from('identity')), 'latin1');
    refused(write('nfkc.model', nfkc), /nfkc\.model: normalization rule 'nmt_nfkc'/);
  });

  it('a llama2.c tokenizer.bin that is too short or lies about a length', () => {
    refused(write('empty.bin', new Uint8Array()), /empty\.bin: the file ends in max_token_length/);
    const bytes = Buffer.from(readFileSync(TOK512_BIN));
    bytes.writeInt32LE(-5, 4 + 4);
    refused(write('lying.bin', bytes), /lying\.bin: token 0 has length -5, max_token_length is 7/);
  });

  it('the SentencePiece .model reader was what train died on: "token 1 has length -1509949419" read as tokenizer.bin', () => {
    expect(() => parseLlama2cTokenizer(readFileSync(TOK512_MODEL), 'tok512.model')).toThrow(/is it a llama2\.c tokenizer\.bin\?/);
    expect(readAnyTokenizer(TOK512_MODEL).vocabSize).toBe(512);
  });
});
