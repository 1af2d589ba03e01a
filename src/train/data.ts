// Training data: plain text (a stream of documents), {"text": …} rows (a document each), or
// Alpaca-format instructions (examples with the loss on the response only), as a JSON array or
// JSON Lines; tokenized and split into training and held-out parts.
import { readFileSync, statSync } from 'node:fs';
import type { Tokenizer } from '../model/tokenizer.ts';
import { createRng } from '../reference/random.ts';
import { encodeDocuments, randomBatch, sequentialBatches } from './batches.ts';
import { DataError } from './data-error.ts';
import { parseJsonRows, rowError } from './json-rows.ts';
import { cachedTokens } from './token-cache.ts';
import type { Batch } from './qalora-model.ts';

export { DataError } from './data-error.ts';

/** Where batches come from; `batch(step)` is a pure function of the step (see seeds.ts). */
export interface Dataset {
  readonly trainTokens: number;
  readonly evalTokens: number;
  batch(seed: number, batchSize: number, seqLen: number): Batch;
  /** The held-out part in order, B rows a batch (the last may have fewer): all of it, or the first `limit` batches. */
  evalBatches(batchSize: number, seqLen: number, limit?: number): Batch[];
}

function readText(path: string): string {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new DataError(path, `cannot read training data: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(e)}`);
  }
  if (size === 0) throw new DataError(path, 'the training data is empty');
  return readFileSync(path, 'utf8');
}

/** A .json or .jsonl file of {"text": …} rows: each row one document, BOS first. */
function isJsonText(path: string): boolean {
  return /\.jsonl?$/i.test(path);
}

function encodeTextRows(path: string, text: string, tokenizer: Tokenizer): Int32Array {
  const rows = parseJsonRows(path, text);
  if (rows.length === 0) throw new DataError(path, 'no rows: expected {"text": "…"} objects, one a line');
  const stream: number[] = [];
  for (const row of rows) {
    const value = row.value as { text?: unknown } | null;
    if (typeof value !== 'object' || value === null || typeof value.text !== 'string') throw rowError(path, row, 'is not {"text": string}');
    if (value.text.trim() !== '') for (const token of tokenizer.encode(value.text)) stream.push(token);
  }
  return Int32Array.from(stream);
}

function tokenizeText(path: string, tokenizer: Tokenizer): Int32Array {
  const text = readText(path);
  if (!isJsonText(path)) return cachedTokens(text, tokenizer.fingerprint, () => encodeDocuments(tokenizer, text));
  // The same bytes read as rows tokenize otherwise than as plain text: another cache key.
  return cachedTokens(text, Buffer.concat([tokenizer.fingerprint, Buffer.from('\0text rows')]), () => encodeTextRows(path, text, tokenizer));
}

/** Text: one token stream; the last `evalFraction` of it is held out. */
export function textDataset(path: string, tokenizer: Tokenizer, evalFraction: number, evalPath?: string): Dataset {
  const stream = tokenizeText(path, tokenizer);
  let train = stream;
  let held: Int32Array;
  if (evalPath) {
    held = tokenizeText(evalPath, tokenizer);
  } else {
    const cut = Math.floor(stream.length * (1 - evalFraction));
    train = stream.subarray(0, cut);
    held = stream.subarray(cut);
  }
  return {
    trainTokens: train.length,
    evalTokens: held.length,
    batch(seed, batchSize, seqLen) {
      if (train.length <= seqLen + 1) throw new DataError(path, `${train.length} training tokens are too few for sequences of ${seqLen}`);
      return randomBatch(train, batchSize, seqLen, createRng(seed));
    },
    evalBatches(batchSize, seqLen, limit = Infinity) {
      const batches = sequentialBatches(held, batchSize, seqLen).slice(0, limit);
      if (batches.length === 0) throw new DataError(evalPath ?? path, `the held-out part (${held.length} tokens) is too short for one sequence of ${seqLen}: raise eval_fraction or lower seq_len`);
      return batches;
    },
  };
}

interface AlpacaExample {
  readonly instruction: string;
  readonly input?: string;
  readonly output: string;
}

/** Stanford Alpaca's prompt, with and without an input. */
export function alpacaPrompt(example: AlpacaExample): string {
  return example.input
    ? `Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n${example.instruction}\n\n### Input:\n${example.input}\n\n### Response:\n`
    : `Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n${example.instruction}\n\n### Response:\n`;
}

interface EncodedExample {
  readonly tokens: Int32Array;
  /** Index of the first response token. */
  readonly responseStart: number;
}

function encodeAlpaca(tokenizer: Tokenizer, example: AlpacaExample): EncodedExample {
  const prompt = tokenizer.encode(alpacaPrompt(example), { bos: true });
  const response = tokenizer.encode(example.output, { bos: false });
  return { tokens: Int32Array.from([...prompt, ...response, tokenizer.eos]), responseStart: prompt.length };
}

/**
 * One example per row, seqLen + 1 tokens of it; the loss counts response positions only. An
 * instruction longer than half the row is cut from the front (the template's end, "### Response:",
 * stays), so every row trains on its response rather than on nothing.
 */
function alpacaBatch(examples: readonly EncodedExample[], seqLen: number, padding: number): Batch {
  const rows = examples.length;
  const tokens = new Int32Array(rows * seqLen).fill(padding);
  const targets = new Int32Array(rows * seqLen).fill(-1);
  const lossMask = new Uint8Array(rows * seqLen);
  examples.forEach((example, b) => {
    const start = Math.max(0, example.responseStart - Math.floor(seqLen / 2));
    for (let t = 0; t < seqLen && start + t + 1 < example.tokens.length; t++) {
      tokens[b * seqLen + t] = example.tokens[start + t]!;
      targets[b * seqLen + t] = example.tokens[start + t + 1]!;
      // Position t predicts token start + t + 1: it counts when that token is part of the response.
      lossMask[b * seqLen + t] = start + t + 1 >= example.responseStart ? 1 : 0;
    }
  });
  return { batchSize: rows, seqLen, tokens, targets, lossMask };
}

export function alpacaDataset(path: string, tokenizer: Tokenizer, evalFraction: number): Dataset {
  const rows = parseJsonRows(path, readText(path));
  if (rows.length === 0) throw new DataError(path, 'expected a non-empty JSON array or JSON Lines of {instruction, input, output}');
  const examples = rows.map((row) => {
    const e = row.value as Partial<AlpacaExample> | null;
    if (typeof e?.instruction !== 'string' || typeof e.output !== 'string' || (e.input !== undefined && typeof e.input !== 'string')) {
      throw rowError(path, row, 'is not {instruction: string, input?: string, output: string}');
    }
    return encodeAlpaca(tokenizer, e as AlpacaExample);
  });
  const cut = Math.max(1, Math.min(examples.length - 1, Math.floor(examples.length * (1 - evalFraction))));
  const train = examples.slice(0, cut);
  const held = examples.slice(cut);
  const count = (list: readonly EncodedExample[]) => list.reduce((n, e) => n + e.tokens.length, 0);
  return {
    trainTokens: count(train),
    evalTokens: count(held),
    batch(seed, batchSize, seqLen) {
      const rng = createRng(seed);
      return alpacaBatch(Array.from({ length: batchSize }, () => train[rng.int(train.length)]!), seqLen, tokenizer.bos);
    },
    evalBatches(batchSize, seqLen, limit = Infinity) {
      const batches: Batch[] = [];
      for (let i = 0; i < held.length && batches.length < limit; i += batchSize) batches.push(alpacaBatch(held.slice(i, i + batchSize), seqLen, tokenizer.bos));
      return batches;
    },
  };
}
