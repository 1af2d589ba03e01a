// Every native CPU kernel against its TypeScript twin in src/runtime/typescript, on random ragged
// shapes (group sizes that are not multiples of 4, odd widths, GQA): outputs and accumulated
// gradients within 1e-5 of the reference relative to its scale, and bit-identical between one
// thread and two.
import { describe, expect, it } from 'vitest';
import { matmul } from '../../../src/model/llama-forward.ts';
import { nativeCpuOps } from '../../../src/runtime/cpu/native-ops.ts';
import type { AttentionShape } from '../../../src/runtime/typescript/attention.ts';
import type { Floats } from '../../../src/runtime/typescript/floats.ts';
import type { QaLoraLinear } from '../../../src/runtime/typescript/qalora-linear.ts';
import { ropeTables } from '../../../src/runtime/typescript/rope.ts';
import type { SyncTrainingOps } from '../../../src/runtime/ops.ts';
import { TYPESCRIPT_OPS } from '../../../src/runtime/typescript/ops.ts';
import { linearCaseData, type LinearCase } from '../linear-case.ts';
import { addon, createRng, nativeBuilt, randomFloats, withOneAndTwoThreads } from './native-support.ts';
import { relativeMaxError } from '../../support/relative-error.ts';

const TOLERANCE = 1e-5;

/**
 * Runs `run(ops)` — which builds its inputs from a fixed seed and returns the arrays it wrote —
 * with the TypeScript ops and with the native ones (1 and 2 threads), and checks them.
 */
function compare(label: string, run: (ops: SyncTrainingOps) => Record<string, Floats | number>): void {
  const expected = run(TYPESCRIPT_OPS);
  const [one, two] = withOneAndTwoThreads(() => run(nativeCpuOps()));
  for (const [name, value] of Object.entries(expected)) {
    const actual = one[name];
    const error = typeof value === 'number' ? Math.abs((actual as number) - value) / Math.max(1, Math.abs(value)) : relativeMaxError(actual as Floats, value);
    expect(error, `${label}: ${name}`).toBeLessThanOrEqual(TOLERANCE);
    expect(two[name], `${label}: ${name}, 2 threads vs 1`).toEqual(actual);
  }
}

describe.skipIf(!nativeBuilt)('native CPU kernels match the TypeScript ops', () => {
  it.each([[1, 7], [37, 64], [130, 43]])('rmsnorm forward and backward, %i rows × %i channels', (rows, channels) => {
    compare(`rmsnorm ${rows}×${channels}`, (ops) => {
      const rng = createRng(rows * 1000 + channels);
      const x = randomFloats(rng, rows * channels, 2), weight = randomFloats(rng, channels, 0.3), dy = randomFloats(rng, rows * channels);
      const out = new Float32Array(rows * channels), rstd = new Float32Array(rows), dx = randomFloats(rng, rows * channels);
      ops.rmsnormForward(out, rstd, x, weight, rows, channels);
      ops.rmsnormBackward(dx, dy, x, weight, rstd, rows, channels);
      return { out, rstd, dx };
    });
  });

  it.each([[2, 9, 3, 6], [3, 17, 5, 10], [1, 33, 2, 64]])('RoPE forward and backward, B=%i T=%i heads=%i headSize=%i', (B, T, heads, headSize) => {
    compare(`rope ${B}×${T}`, (ops) => {
      const rng = createRng(B * T * heads);
      const tables = ropeTables(headSize, 40);
      const width = heads * headSize;
      const x = randomFloats(rng, B * T * width), dx = randomFloats(rng, B * T * width);
      ops.ropeForward(x, tables, B, T, width);
      ops.ropeBackward(dx, tables, B, T, width);
      return { x, dx };
    });
  });

  it.each([
    { batch: 2, seqLen: 11, heads: 4, kvHeads: 2, headSize: 6 },
    { batch: 3, seqLen: 23, heads: 6, kvHeads: 3, headSize: 5 },
    { batch: 1, seqLen: 40, heads: 8, kvHeads: 4, headSize: 8 },
    { batch: 2, seqLen: 7, heads: 3, kvHeads: 3, headSize: 4 },
  ])('attention forward and backward, %o', (shape: AttentionShape) => {
    compare('attention', (ops) => {
      const rng = createRng(shape.seqLen * 31 + shape.heads);
      const rows = shape.batch * shape.seqLen, qw = shape.heads * shape.headSize, kvw = shape.kvHeads * shape.headSize;
      const q = randomFloats(rng, rows * qw), k = randomFloats(rng, rows * kvw), v = randomFloats(rng, rows * kvw);
      const out = new Float32Array(rows * qw), probs = new Float32Array(shape.batch * shape.heads * shape.seqLen * shape.seqLen);
      const dOut = randomFloats(rng, rows * qw);
      const dq = randomFloats(rng, rows * qw), dk = randomFloats(rng, rows * kvw), dv = randomFloats(rng, rows * kvw);
      ops.attentionForward(out, probs, q, k, v, shape);
      ops.attentionBackward(dq, dk, dv, dOut, q, k, v, probs, shape);
      return { out, probs, dq, dk, dv };
    });
  });

  it.each([1, 13, 1000])('SwiGLU forward and backward, %i elements', (count) => {
    compare(`swiglu ${count}`, (ops) => {
      const rng = createRng(count);
      const gate = randomFloats(rng, count, 3), up = randomFloats(rng, count), dOut = randomFloats(rng, count);
      const out = new Float32Array(count), dGate = randomFloats(rng, count), dUp = randomFloats(rng, count);
      ops.swigluForward(out, gate, up, count);
      ops.swigluBackward(dGate, dUp, dOut, gate, up, count);
      return { out, dGate, dUp };
    });
  });

  it.each([[5, 7, 11], [64, 24, 97]])('lm_head forward and backward, %i rows × %i channels → %i', (rows, channels, vocab) => {
    compare('lm_head', (ops) => {
      const rng = createRng(rows + channels + vocab);
      const x = randomFloats(rng, rows * channels), classifier = randomFloats(rng, vocab * channels), dLogits = randomFloats(rng, rows * vocab);
      dLogits[3] = 0; // the backward skips zeros
      const logits = new Float32Array(rows * vocab), dx = randomFloats(rng, rows * channels);
      ops.lmHeadForward(logits, x, classifier, rows, channels, vocab);
      ops.lmHeadBackward(dx, dLogits, classifier, rows, channels, vocab);
      return { logits, dx };
    });
  });

  it.each([false, true])('cross-entropy forward and backward (loss mask: %s, ignored targets)', (masked) => {
    compare('cross-entropy', (ops) => {
      const rng = createRng(masked ? 2 : 1);
      const rows = 29, vocab = 53;
      const logits = randomFloats(rng, rows * vocab, 4);
      const targets = Array.from({ length: rows }, (_, i) => (i % 7 === 3 ? -100 : rng.int(vocab)));
      const mask = masked ? Array.from({ length: rows }, (_, i) => (i % 3 === 0 ? 0 : 1)) : undefined;
      const probs = new Float32Array(rows * vocab), dLogits = randomFloats(rng, rows * vocab, 0.01);
      const { loss, counted } = ops.crossEntropyForward(probs, logits, targets, mask, rows, vocab);
      ops.crossEntropyBackward(dLogits, probs, targets, mask, rows, vocab, 0.5);
      return { loss, counted, probs, dLogits };
    });
  });

  it('cross-entropy refuses a target outside the vocabulary, as the TypeScript op does', () => {
    const probs = new Float32Array(6), logits = new Float32Array(6);
    expect(() => nativeCpuOps().crossEntropyForward(probs, logits, [1, 3], undefined, 2, 3)).toThrow(/target 3 at row 1 is outside the vocabulary of 3/);
  });
});

const LINEAR_CASES: LinearCase[] = [
  { name: '4-bit, group 16, rank 8, mean', rows: 37, K: 64, N: 41, group: 16, bits: 4, rank: 8, pooling: 'mean' },
  { name: '3-bit, group 7 (ragged), rank 3, sum, dropout', rows: 19, K: 35, N: 13, group: 7, bits: 3, rank: 3, pooling: 'sum', dropout: 0.3 },
  { name: '2-bit, group 43, rank 5, merged (fractional) zeros', rows: 8, K: 172, N: 64, group: 43, bits: 2, rank: 5, fractionalZeros: true },
  { name: '8-bit, group 6, no adapter', rows: 50, K: 30, N: 17, group: 6, bits: 8, rank: 0 },
  { name: 'dense base, rank 4', rows: 23, K: 24, N: 9, group: 8, bits: null, rank: 4, dropout: 0.5 },
  { name: 'dense base, no adapter, one row', rows: 1, K: 5, N: 3, group: 1, bits: null, rank: 0 },
];

describe.skipIf(!nativeBuilt)('native QA-LoRA linear matches the TypeScript op', () => {
  it.each(LINEAR_CASES)('$name: y, u, v, dx, dA, dB', (c) => {
    compare(c.name, (ops) => {
      const data = linearCaseData(c);
      ops.qaloraLinearForward(data.y, data.x, c.rows, data.layer, data.saved);
      ops.qaloraLinearBackward(data.dx, data.dy, c.rows, data.layer, data.saved);
      return data.outputs();
    });
  });

  it('names the array whose type or length is wrong instead of reading past it', () => {
    const native = nativeCpuOps();
    const layer: QaLoraLinear = { base: { kind: 'dense', inFeatures: 4, outFeatures: 2, weight: new Float32Array(8) }, adapter: null };
    expect(() => native.qaloraLinearForward(new Float32Array(2), new Float32Array(3), 1, layer)).toThrow(/x has 3 elements, expected 4/);
    expect(() => native.qaloraLinearForward(new Float64Array(2), new Float32Array(4), 1, layer)).toThrow(/float32; y is a Float64Array/);
  });
});

describe.skipIf(!nativeBuilt)('native matrix-vector product', () => {
  it.each([[64, 64], [172, 64], [5, 3], [64, 512]])('reproduces LlamaForward\'s matmul bit for bit, in %i → out %i', (inFeatures, outFeatures) => {
    const rng = createRng(inFeatures + outFeatures);
    const x = randomFloats(rng, inFeatures), w = randomFloats(rng, inFeatures * outFeatures);
    const expected = new Float32Array(outFeatures);
    matmul(expected, x, w, inFeatures, outFeatures);
    const [one, two] = withOneAndTwoThreads(() => {
      const y = new Float32Array(outFeatures);
      addon().matvecOutMajor(y, x, w, inFeatures, outFeatures);
      return y;
    });
    expect(one).toEqual(expected);
    expect(two).toEqual(expected);
  });
});
