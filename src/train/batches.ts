// Language-modelling batches from one token stream: input tokens[n … n+T) and targets
// tokens[n+1 … n+T], B windows per batch.
import type { Rng } from '../reference/random.ts';
import type { Batch } from './qalora-model.ts';

/** B windows at uniformly random offsets (seeded). */
export function randomBatch(stream: ArrayLike<number>, batchSize: number, seqLen: number, rng: Rng): Batch {
  const offsets = Array.from({ length: batchSize }, () => rng.int(stream.length - seqLen));
  return windowsAt(stream, offsets, seqLen);
}

/**
 * Every consecutive non-overlapping window from the start of the stream, B to a batch; the last
 * batch has the windows that are left (fewer rows). Only the tail shorter than a window is unused.
 */
export function sequentialBatches(stream: ArrayLike<number>, batchSize: number, seqLen: number): Batch[] {
  const windows = Math.max(0, Math.floor((stream.length - 1) / seqLen));
  const batches: Batch[] = [];
  for (let first = 0; first < windows; first += batchSize) {
    const rows = Math.min(batchSize, windows - first);
    batches.push(windowsAt(stream, Array.from({ length: rows }, (_, b) => (first + b) * seqLen), seqLen));
  }
  return batches;
}

function windowsAt(stream: ArrayLike<number>, offsets: readonly number[], seqLen: number): Batch {
  const tokens = new Int32Array(offsets.length * seqLen);
  const targets = new Int32Array(offsets.length * seqLen);
  offsets.forEach((offset, b) => {
    if (offset + seqLen + 1 > stream.length) throw new RangeError(`window at ${offset} runs past the stream's ${stream.length} tokens`);
    for (let t = 0; t < seqLen; t++) {
      tokens[b * seqLen + t] = stream[offset + t];
      targets[b * seqLen + t] = stream[offset + t + 1];
    }
  });
  return { batchSize: offsets.length, seqLen, tokens, targets };
}

/**
 * Tokenizes a long text as a stream of documents split at blank lines, each starting with BOS.
 * run.c's encoder merges pairs in O(length²), so it is fed paragraph by paragraph.
 */
export function encodeDocuments(tokenizer: { encode(text: string): number[] }, text: string): Int32Array {
  const stream: number[] = [];
  for (const paragraph of text.split(/\n\s*\n/)) {
    const trimmed = paragraph.trim();
    if (trimmed.length > 0) for (const token of tokenizer.encode(trimmed)) stream.push(token);
  }
  return Int32Array.from(stream);
}
