// GPTQ against a float64 reference of the algorithm written another way: the paper's
// Optimal-Brain-Surgeon form (explicit H⁻¹, each input's error spread by H⁻¹'s column, then that
// input eliminated from H⁻¹), one input at a time with no blocks and no Cholesky. The blocked,
// Cholesky-based quantizer must choose exactly the same codes, and on correlated inputs its
// output error ‖X·(W − Ŵ)‖ must beat round-to-nearest's.
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../src/quant/dequantize.ts';
import { HessianAccumulator, HessianError, quantizeGptq } from '../../src/quant/gptq.ts';
import type { Bits } from '../../src/quant/quantized-weight.ts';
import { groupScaleAndZero, quantizeRtn, quantizeValue } from '../../src/quant/rtn.ts';
import { createRng } from '../../src/reference/random.ts';

/** X [T, K] with correlated columns: Z·M for Gaussian-ish Z and a random mixing M, plus a mean. */
function correlatedInputs(seed: number, rows: number, K: number): Float64Array {
  const rng = createRng(seed);
  const mix = Float64Array.from({ length: K * K }, (_, i) => (i % (K + 1) === 0 ? 1 : 0) + 0.4 * (rng.next() - 0.5));
  const x = new Float64Array(rows * K);
  for (let t = 0; t < rows; t++) {
    const z = Float64Array.from({ length: K }, () => rng.next() + rng.next() + rng.next() - 1.5);
    for (let j = 0; j < K; j++) {
      let s = 0.3;
      for (let i = 0; i < K; i++) s += z[i]! * mix[i * K + j]!;
      x[t * K + j] = s;
    }
  }
  return x;
}

function randomWeight(seed: number, K: number, N: number): Float64Array {
  const rng = createRng(seed);
  return Float64Array.from({ length: K * N }, () => (rng.next() - 0.5) * (rng.next() < 0.05 ? 3 : 1));
}

function hessianOf(x: Float64Array, rows: number, K: number): Float64Array {
  const acc = new HessianAccumulator(K);
  acc.add(x, rows);
  return acc.hessian();
}

/** Gauss–Jordan inverse, float64. */
function inverse(a: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const inv = Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]!) > Math.abs(m[p * n + c]!)) p = r;
    for (let k = 0; k < n; k++) {
      [m[c * n + k], m[p * n + k]] = [m[p * n + k]!, m[c * n + k]!];
      [inv[c * n + k], inv[p * n + k]] = [inv[p * n + k]!, inv[c * n + k]!];
    }
    const pivot = m[c * n + c]!;
    for (let k = 0; k < n; k++) { m[c * n + k] /= pivot; inv[c * n + k] /= pivot; }
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r * n + c]!;
      if (f === 0) continue;
      for (let k = 0; k < n; k++) { m[r * n + k] -= f * m[c * n + k]!; inv[r * n + k] -= f * inv[c * n + k]!; }
    }
  }
  return inv;
}

/** The OBS form of GPTQ: quantize input i, spread its error by H⁻¹[:, i] / H⁻¹[i, i], eliminate i. */
function referenceGptq(weight: Float64Array, K: number, N: number, h: Float64Array, bits: Bits, groupSize: number, symmetric: boolean, damp = 0.01) {
  const w = Float64Array.from(weight);
  const damped = Float64Array.from(h);
  let mean = 0;
  for (let i = 0; i < K; i++) mean += h[i * K + i]! / K;
  for (let i = 0; i < K; i++) damped[i * K + i] += damp * mean;
  const hinv = inverse(damped, K);
  const q = new Uint8Array(K * N);
  const scale = new Float64Array(N);
  const zero = new Float64Array(N);
  for (let i = 0; i < K; i++) {
    if (i % groupSize === 0) {
      for (let o = 0; o < N; o++) {
        const column = Array.from({ length: groupSize }, (_, r) => w[(i + r) * N + o]!);
        const p = groupScaleAndZero(Math.min(...column), Math.max(...column), bits, symmetric);
        scale[o] = p.scale;
        zero[o] = p.zero;
      }
    }
    const d = hinv[i * K + i]!;
    for (let o = 0; o < N; o++) {
      const code = quantizeValue(w[i * N + o]!, scale[o]!, zero[o]!, bits);
      q[i * N + o] = code;
      const err = (w[i * N + o]! - scale[o]! * (code - zero[o]!)) / d;
      for (let j = i + 1; j < K; j++) w[j * N + o] -= err * hinv[j * K + i]!;
    }
    // Remove input i from the inverse (the inverse of H with row and column i dropped).
    const column = Float64Array.from({ length: K }, (_, r) => hinv[r * K + i]!);
    for (let r = 0; r < K; r++) for (let c = 0; c < K; c++) hinv[r * K + c] -= (column[r]! * column[c]!) / d;
  }
  return q;
}

/** ‖X·(W − Ŵ)‖_F. */
function outputError(x: Float64Array, rows: number, K: number, N: number, w: Float64Array, wHat: Float64Array): number {
  let sum = 0;
  for (let t = 0; t < rows; t++) {
    for (let o = 0; o < N; o++) {
      let y = 0;
      for (let i = 0; i < K; i++) y += x[t * K + i]! * (w[i * N + o]! - wHat[i * N + o]!);
      sum += y * y;
    }
  }
  return Math.sqrt(sum);
}

const CASES: { K: number; N: number; bits: Bits; group: number; symmetric: boolean }[] = [
  { K: 48, N: 7, bits: 4, group: 16, symmetric: false },
  { K: 300, N: 5, bits: 3, group: 20, symmetric: false }, // blocks of 120: lazy updates across blocks
  { K: 150, N: 6, bits: 2, group: 150, symmetric: false }, // one group per column, a block larger than 128
  { K: 96, N: 9, bits: 8, group: 32, symmetric: true },
  { K: 64, N: 11, bits: 4, group: 64, symmetric: true },
];

describe('GPTQ', () => {
  it.each(CASES)('K=$K N=$N $bits bits group $group symmetric=$symmetric: the same codes as the OBS reference', ({ K, N, bits, group, symmetric }) => {
    const rows = 2 * K + 13;
    const x = correlatedInputs(K + N, rows, K);
    const w = randomWeight(K * N, K, N);
    const h = hessianOf(x, rows, K);
    const got = quantizeGptq(w, K, N, h, { bits, groupSize: group, symmetric });
    const want = referenceGptq(w, K, N, h, bits, group, symmetric);
    let differ = 0;
    for (let i = 0; i < want.length; i++) if (got.q[i] !== want[i]) differ++;
    expect(differ).toBe(0);
  });

  it.each(CASES)('K=$K N=$N $bits bits group $group: a smaller output error than RTN on correlated inputs', ({ K, N, bits, group, symmetric }) => {
    const rows = 2 * K + 13;
    const x = correlatedInputs(K + N + 1, rows, K);
    const w = randomWeight(K * N + 1, K, N);
    const gptq = dequantize(quantizeGptq(w, K, N, hessianOf(x, rows, K), { bits, groupSize: group, symmetric }));
    const rtn = dequantize(quantizeRtn(w, K, N, { bits, groupSize: group, symmetric }));
    expect(outputError(x, rows, K, N, w, gptq)).toBeLessThan(0.95 * outputError(x, rows, K, N, w, rtn));
  });

  it('with uncorrelated inputs (H a multiple of I) it is RTN exactly', () => {
    const K = 40;
    const N = 6;
    const w = randomWeight(3, K, N);
    const h = Float64Array.from({ length: K * K }, (_, i) => (i % (K + 1) === 0 ? 2.5 : 0));
    for (const bits of [2, 3, 4, 8] as Bits[]) {
      expect(quantizeGptq(w, K, N, h, { bits, groupSize: 8 })).toEqual(quantizeRtn(w, K, N, { bits, groupSize: 8 }));
    }
  });

  it('an input never active in calibration gets zero weights; a Hessian without damping that is singular is refused', () => {
    const K = 16;
    const N = 3;
    const x = correlatedInputs(5, 40, K);
    for (let t = 0; t < 40; t++) x[t * K + 5] = 0;
    const got = quantizeGptq(randomWeight(4, K, N), K, N, hessianOf(x, 40, K), { bits: 4, groupSize: 8 });
    const dense = dequantize(got);
    expect(Array.from(dense.subarray(5 * N, 6 * N)).map((v) => Math.abs(v))).toEqual([0, 0, 0]);
    // Rank 1 activations with a vanishing damp: H + εI is numerically singular.
    const rank1 = Float64Array.from({ length: 40 * K }, (_, i) => (i % K) + 1);
    expect(() => quantizeGptq(randomWeight(4, K, N), K, N, hessianOf(rank1, 40, K), { bits: 4, groupSize: 8, damp: 1e-300 })).toThrow(HessianError);
  });

  it('accumulates H = 2·XᵀX / rows over calls', () => {
    const K = 5;
    const x = correlatedInputs(9, 7, K);
    const acc = new HessianAccumulator(K);
    acc.add(x.subarray(0, 3 * K), 3);
    acc.add(x.subarray(3 * K), 4);
    const h = acc.hessian();
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < K; j++) {
        let s = 0;
        for (let t = 0; t < 7; t++) s += x[t * K + i]! * x[t * K + j]!;
        expect(h[i * K + j]).toBeCloseTo((2 * s) / 7, 12);
      }
    }
  });
});
