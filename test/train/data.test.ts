// Training data as the trainer reads it: Alpaca examples with the loss on the response only,
// and text split into training and held-out parts; bad files named.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { readTokenizer } from '../../src/model/read-tokenizer.ts';
import { alpacaDataset, alpacaPrompt, DataError, textDataset } from '../../src/train/data.ts';

const TOKENIZER = resolve('../shared/models/stories260K/tok512.bin');
const tokenizer = readTokenizer(TOKENIZER, 512);
const work = mkdtempSync(join(tmpdir(), 'qalc-data-'));

describe('Alpaca data', () => {
  const examples = [
    { instruction: 'Say hi.', input: '', output: 'Hi there.' },
    { instruction: 'Add the numbers.', input: '2 and 3', output: 'Five.' },
    { instruction: 'Name a colour.', output: 'Red.' },
    { instruction: 'Count to two.', input: '', output: 'One, two.' },
  ];
  const path = join(work, 'alpaca.json');
  writeFileSync(path, JSON.stringify(examples));

  it('uses the Stanford Alpaca template, with and without an input', () => {
    expect(alpacaPrompt(examples[1]!)).toContain('### Input:\n2 and 3\n\n### Response:\n');
    expect(alpacaPrompt(examples[0]!)).not.toContain('### Input:');
  });

  it('counts the loss on the response tokens only, up to EOS, keeping the response in a short row', () => {
    const data = alpacaDataset(path, tokenizer, 0.25);
    const batch = data.batch(1, 2, 96);
    for (let row = 0; row < 2; row++) {
      const tokens = Array.from(batch.tokens).slice(row * 96, row * 96 + 96);
      const targets = Array.from(batch.targets!).slice(row * 96, row * 96 + 96);
      const mask = Array.from(batch.lossMask!).slice(row * 96, row * 96 + 96);
      const counted = targets.filter((_, t) => mask[t] === 1);
      // The counted targets decode to the response and end with EOS.
      expect(counted[counted.length - 1]).toBe(tokenizer.eos);
      const response = tokenizer.decode(counted.slice(0, -1)).trim();
      expect(examples.map((e) => e.output)).toContain(response);
      // Nothing of the prompt is counted: every masked-out target before the response is prompt.
      const firstCounted = mask.indexOf(1);
      expect(firstCounted).toBeLessThanOrEqual(48);
      expect(tokenizer.decode(tokens.slice(0, firstCounted + 1))).toContain('### Response:');
      expect(targets.slice(targets.lastIndexOf(tokenizer.eos) + 1).every((t) => t === -1)).toBe(true);
    }
  });

  it('holds out the last examples and names a malformed file', () => {
    const data = alpacaDataset(path, tokenizer, 0.25);
    expect(data.evalBatches(1, 64, 10)).toHaveLength(1);
    writeFileSync(join(work, 'bad.json'), JSON.stringify([{ instruction: 'x' }]));
    expect(() => alpacaDataset(join(work, 'bad.json'), tokenizer, 0.1)).toThrow(/bad\.json: example 0 is not \{instruction: string, input\?: string, output: string\}/);
    writeFileSync(join(work, 'broken.json'), '[{"instruction": ');
    expect(() => alpacaDataset(join(work, 'broken.json'), tokenizer, 0.1)).toThrow(DataError);
  });

  it('reads JSON Lines as well as a JSON array: the same examples, the same batches', () => {
    const lines = join(work, 'alpaca.jsonl');
    writeFileSync(lines, examples.map((e) => JSON.stringify(e)).join('\n') + '\n\n');
    const fromArray = alpacaDataset(path, tokenizer, 0.25);
    const fromLines = alpacaDataset(lines, tokenizer, 0.25);
    expect(fromLines.trainTokens).toBe(fromArray.trainTokens);
    expect(fromLines.batch(9, 3, 40)).toEqual(fromArray.batch(9, 3, 40));
    expect(fromLines.evalBatches(2, 40)).toEqual(fromArray.evalBatches(2, 40));
  });

  it('names the line of a bad JSON Lines row', () => {
    const bad = join(work, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify(examples[0])}\n\n{"instruction": "x", "output": 3}\n`);
    expect(() => alpacaDataset(bad, tokenizer, 0.1)).toThrow(DataError);
    expect(() => alpacaDataset(bad, tokenizer, 0.1)).toThrow(/bad\.jsonl:3: this row is not \{instruction: string, input\?: string, output: string\}/);
    writeFileSync(bad, `${JSON.stringify(examples[0])}\n{"instruction": "x",\n`);
    expect(() => alpacaDataset(bad, tokenizer, 0.1)).toThrow(/bad\.jsonl:2: not valid JSON \(a JSON Lines file has one JSON object a line\)/);
    writeFileSync(bad, '\n\n');
    expect(() => alpacaDataset(bad, tokenizer, 0.1)).toThrow(/bad\.jsonl: expected a non-empty JSON array or JSON Lines/);
    writeFileSync(bad, '[{"instruction": "x", "output": "y"}, null]');
    expect(() => alpacaDataset(bad, tokenizer, 0.1)).toThrow(/bad\.jsonl: example 1 is not/);
  });

  it('reads the shared Alpaca demo set', () => {
    const data = alpacaDataset(resolve('../shared/data/alpaca_en_demo.json'), tokenizer, 0.05);
    expect(data.trainTokens).toBeGreaterThan(data.evalTokens);
    const batch = data.batch(3, 4, 128);
    expect(Array.from(batch.lossMask!).some((m) => m === 1)).toBe(true);
  });
});

describe('text data', () => {
  it('reads {"text": …} rows of JSON Lines or a JSON array, one document a row with BOS first', () => {
    const rows = ['Once upon a time, there was a cat.', 'The cat sat.\n\nThen it slept.', 'The end.'];
    const lines = join(work, 'stories.jsonl');
    writeFileSync(lines, rows.map((text) => JSON.stringify({ text, source: 'test' })).join('\n'));
    const array = join(work, 'stories.json');
    writeFileSync(array, JSON.stringify(rows.map((text) => ({ text }))));
    const expected = rows.flatMap((text) => tokenizer.encode(text));
    // Trained on the JSON Lines file, held out on the JSON array: the same stream each.
    const data = textDataset(lines, tokenizer, 0, array);
    expect([data.trainTokens, data.evalTokens]).toEqual([expected.length, expected.length]);
    expect(data.evalBatches(1, expected.length - 1)[0]!.tokens).toEqual(Int32Array.from(expected.slice(0, -1)));
    expect(expected.filter((t) => t === tokenizer.bos)).toHaveLength(3);
  });

  it('names the line of a row that is not {"text": string}', () => {
    const bad = join(work, 'bad-text.jsonl');
    writeFileSync(bad, '{"text": "fine"}\n{"content": "not text"}\n');
    expect(() => textDataset(bad, tokenizer, 0.1)).toThrow(/bad-text\.jsonl:2: this row is not \{"text": string\}/);
    writeFileSync(bad, '{"text": "fine"}\n{"text": \n');
    expect(() => textDataset(bad, tokenizer, 0.1)).toThrow(/bad-text\.jsonl:2: not valid JSON/);
  });

  it('holds out the end of the stream, and refuses an empty or missing file', () => {
    const path = join(work, 'story.txt');
    writeFileSync(path, readFileSync(resolve('../shared/data/tinystories_val_head.txt'), 'utf8').slice(0, 20_000));
    const data = textDataset(path, tokenizer, 0.2);
    expect(data.evalTokens / (data.trainTokens + data.evalTokens)).toBeCloseTo(0.2, 1);
    const batch = data.batch(5, 2, 16);
    expect(Array.from(batch.targets!).slice(0, 15)).toEqual(Array.from(batch.tokens).slice(1, 16));
    writeFileSync(join(work, 'empty.txt'), '');
    expect(() => textDataset(join(work, 'empty.txt'), tokenizer, 0.1)).toThrow('empty.txt: the training data is empty');
    expect(() => textDataset(join(work, 'none.txt'), tokenizer, 0.1)).toThrow('none.txt: cannot read training data: no such file');
  });
});
