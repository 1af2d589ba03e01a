// Every op's backward against central finite differences in float64, on tiny ragged shapes
// (B=2, T=3, C=8, heads=2, kv_heads=1, head size 4). The losses are ⟨op(x), R⟩ for a random R,
// so ∂loss/∂out = R is the upstream gradient handed to the backward.
import { describe, expect, it } from 'vitest';
import { createRng } from '../../../src/reference/random.ts';
import { attentionBackward, attentionForward, type AttentionShape } from '../../../src/runtime/typescript/attention.ts';
import { crossEntropyBackward, crossEntropyForward } from '../../../src/runtime/typescript/cross-entropy.ts';
import { embeddingForward } from '../../../src/runtime/typescript/embedding.ts';
import { lmHeadBackward, lmHeadForward } from '../../../src/runtime/typescript/lm-head.ts';
import { rmsnormBackward, rmsnormForward } from '../../../src/runtime/typescript/rmsnorm.ts';
import { ropeBackward, ropeForward, ropeTables } from '../../../src/runtime/typescript/rope.ts';
import { swigluBackward, swigluForward } from '../../../src/runtime/typescript/swiglu.ts';
import { dot, gradientError, randomArray } from '../../support/finite-differences.ts';

const B = 2, T = 3, C = 8, HEADS = 2, KV_HEADS = 1, HEAD_SIZE = C / HEADS;
const ROWS = B * T;
const TOLERANCE = 1e-6;

describe('embedding', () => {
  it('gathers rows of the table and rejects tokens outside it', () => {
    const table = Float64Array.from({ length: 5 * 3 }, (_, i) => i);
    const out = new Float64Array(2 * 3);
    embeddingForward(out, [4, 1], table, 2, 3);
    expect([...out]).toEqual([12, 13, 14, 3, 4, 5]);
    expect(() => embeddingForward(out, [5, 0], table, 2, 3)).toThrow(/token 5 .* vocabulary of 5/);
  });
});

describe('rmsnorm', () => {
  it('backward matches finite differences', () => {
    const rng = createRng(1);
    const x = randomArray(rng, ROWS * C);
    const weight = randomArray(rng, C);
    const r = randomArray(rng, ROWS * C);
    const out = new Float64Array(ROWS * C), rstd = new Float64Array(ROWS);
    const loss = () => (rmsnormForward(out, rstd, x, weight, ROWS, C, 1e-5), dot(out, r));
    loss();
    const dx = new Float64Array(ROWS * C);
    rmsnormBackward(dx, r, x, weight, rstd, ROWS, C);
    expect(gradientError(loss, x, dx)).toBeLessThan(TOLERANCE);
  });

  it('backward accumulates into dx', () => {
    const rng = createRng(2);
    const x = randomArray(rng, C), weight = randomArray(rng, C), r = randomArray(rng, C);
    const out = new Float64Array(C), rstd = new Float64Array(1);
    rmsnormForward(out, rstd, x, weight, 1, C, 1e-5);
    const once = new Float64Array(C), twice = new Float64Array(C);
    rmsnormBackward(once, r, x, weight, rstd, 1, C);
    rmsnormBackward(twice, r, x, weight, rstd, 1, C);
    rmsnormBackward(twice, r, x, weight, rstd, 1, C);
    twice.forEach((value, i) => expect(value).toBeCloseTo(2 * once[i], 12));
  });
});

describe('rope', () => {
  const tables = ropeTables(HEAD_SIZE, T, 10000);

  it('rotates position 0 by nothing and keeps every pair\'s length (float32 tables)', () => {
    const rng = createRng(3);
    const x = randomArray(rng, ROWS * C);
    const y = Float64Array.from(x);
    ropeForward(y, tables, B, T, C);
    for (let c = 0; c < C; c++) expect(y[c]).toBe(x[c]);
    for (let i = 0; i < x.length; i += 2) expect(Math.hypot(y[i], y[i + 1])).toBeCloseTo(Math.hypot(x[i], x[i + 1]), 6);
    expect(y[C + 2]).not.toBeCloseTo(x[C + 2], 6); // position 1 moved
  });

  it('backward matches finite differences (queries and the narrower keys)', () => {
    for (const width of [C, KV_HEADS * HEAD_SIZE]) {
      const rng = createRng(4);
      const x = randomArray(rng, ROWS * width), r = randomArray(rng, ROWS * width);
      const loss = () => {
        const y = Float64Array.from(x);
        ropeForward(y, tables, B, T, width);
        return dot(y, r);
      };
      const dx = Float64Array.from(r);
      ropeBackward(dx, tables, B, T, width);
      expect(gradientError(loss, x, dx)).toBeLessThan(TOLERANCE);
    }
  });
});

describe('causal grouped-query attention', () => {
  const shape: AttentionShape = { batch: B, seqLen: T, heads: HEADS, kvHeads: KV_HEADS, headSize: HEAD_SIZE };
  const kvWidth = KV_HEADS * HEAD_SIZE;

  it('backward matches finite differences for q, k and v', () => {
    const rng = createRng(5);
    const q = randomArray(rng, ROWS * C), k = randomArray(rng, ROWS * kvWidth), v = randomArray(rng, ROWS * kvWidth);
    const r = randomArray(rng, ROWS * C);
    const out = new Float64Array(ROWS * C), probs = new Float64Array(B * HEADS * T * T);
    const loss = () => (attentionForward(out, probs, q, k, v, shape), dot(out, r));
    loss();
    const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
    attentionBackward(dq, dk, dv, r, q, k, v, out, probs, shape);
    expect(gradientError(loss, q, dq)).toBeLessThan(TOLERANCE);
    expect(gradientError(loss, k, dk)).toBeLessThan(TOLERANCE);
    expect(gradientError(loss, v, dv)).toBeLessThan(TOLERANCE);
  });

  it('never lets a position see a later one, and both heads share the kv head', () => {
    const rng = createRng(6);
    const q = randomArray(rng, ROWS * C), k = randomArray(rng, ROWS * kvWidth), v = randomArray(rng, ROWS * kvWidth);
    const out = new Float64Array(ROWS * C), probs = new Float64Array(B * HEADS * T * T);
    attentionForward(out, probs, q, k, v, shape);
    const before = Float64Array.from(out);
    for (let i = 0; i < kvWidth; i++) { k[(T - 1) * kvWidth + i] += 1; v[(T - 1) * kvWidth + i] += 1; }
    attentionForward(out, probs, q, k, v, shape);
    for (let i = 0; i < (T - 1) * C; i++) expect(out[i]).toBe(before[i]);
    expect(out[(T - 1) * C]).not.toBe(before[(T - 1) * C]);
    // Position 0 attends only to itself: its output is v_0 for every head.
    for (let h = 0; h < HEADS; h++) for (let i = 0; i < HEAD_SIZE; i++) expect(out[h * HEAD_SIZE + i]).toBeCloseTo(v[i], 12);
  });
});

describe('swiglu', () => {
  it('backward matches finite differences for gate and up', () => {
    const rng = createRng(7);
    const n = ROWS * 5;
    const gate = randomArray(rng, n, 2), up = randomArray(rng, n), r = randomArray(rng, n);
    const out = new Float64Array(n);
    const loss = () => (swigluForward(out, gate, up, n), dot(out, r));
    const dGate = new Float64Array(n), dUp = new Float64Array(n);
    swigluBackward(dGate, dUp, r, gate, up, n);
    expect(gradientError(loss, gate, dGate)).toBeLessThan(TOLERANCE);
    expect(gradientError(loss, up, dUp)).toBeLessThan(TOLERANCE);
  });
});

describe('lm_head (tied, frozen)', () => {
  it('backward matches finite differences for its input', () => {
    const rng = createRng(8);
    const vocab = 11;
    const x = randomArray(rng, ROWS * C), table = randomArray(rng, vocab * C), r = randomArray(rng, ROWS * vocab);
    const logits = new Float64Array(ROWS * vocab);
    const loss = () => (lmHeadForward(logits, x, table, ROWS, C, vocab), dot(logits, r));
    const dx = new Float64Array(x.length);
    lmHeadBackward(dx, r, table, ROWS, C, vocab);
    expect(gradientError(loss, x, dx)).toBeLessThan(TOLERANCE);
  });
});

describe('cross-entropy with a loss mask', () => {
  const vocab = 7;
  const targets = [3, 0, 6, -1, 2, 5];
  const mask = [0, 1, 1, 1, 0, 1]; // row 3 is ignored by its target, rows 0 and 4 by the mask

  it('averages −log p(target) over the counted positions only', () => {
    const logits = new Float64Array(ROWS * vocab); // uniform: every counted loss is log V
    const probs = new Float64Array(ROWS * vocab);
    const { loss, counted } = crossEntropyForward(probs, logits, targets, mask, ROWS, vocab);
    expect(counted).toBe(3);
    expect(loss).toBeCloseTo(Math.log(vocab), 12);
    expect(crossEntropyForward(probs, logits, targets, [0, 0, 0, 0, 0, 0], ROWS, vocab).loss).toBeNaN();
  });

  it('backward matches finite differences and is zero on masked rows', () => {
    const rng = createRng(9);
    const logits = randomArray(rng, ROWS * vocab, 3);
    const probs = new Float64Array(ROWS * vocab);
    const loss = () => crossEntropyForward(probs, logits, targets, mask, ROWS, vocab).loss;
    loss();
    const dLogits = new Float64Array(logits.length);
    crossEntropyBackward(dLogits, probs, targets, mask, ROWS, vocab);
    expect(gradientError(loss, logits, dLogits)).toBeLessThan(TOLERANCE);
    for (const row of [0, 3, 4]) for (let v = 0; v < vocab; v++) expect(dLogits[row * vocab + v]).toBe(0);
    expect(dLogits[1 * vocab + 1]).not.toBe(0);
  });
});
