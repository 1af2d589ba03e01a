import { describe, expect, it } from 'vitest';
import { dequantize } from '../../src/quant/dequantize.ts';
import { maxCode, type Bits } from '../../src/quant/quantized-weight.ts';
import { quantizeRtn, quantizeRtnByRows } from '../../src/quant/rtn.ts';
import { createRng, randomNormalMatrix } from '../../src/reference/random.ts';

const ALL_BITS: Bits[] = [2, 3, 4, 8];

describe('quantizeRtn, asymmetric (QALORA.md)', () => {
  // K = g = 4, N = 4, 2 bits. Columns chosen so every step is exact in binary and ties occur:
  //   col 0: range [−1, 2], s = 1, z = round(1) = 1;   0.5 is a tie → round(0.5) = 0, q = 1
  //   col 1: all ≥ 0, range [0, 3], s = 1, z = 0;      ties 0.5 → 0, 1.5 → 2, 2.5 → 2
  //   col 2: range [−1.5, 1.5], s = 1, z = round(1.5) = 2; round(−1.5) = −2 → q 0;
  //          round(1.5) + 2 = 4 clamps to 3, so Ŵ = 1 (error 0.5 = s/2)
  //   col 3: all zero → widened to [−1, 1], s = 2/3, z = round(1.5) = 2, every q = z
  const W = Float64Array.from([
    -1, 0.5, -1.5, 0,
    0.25, 1.5, 0, 0,
    0.5, 2.5, 0, 0,
    2, 3, 1.5, 0,
  ]);

  it('matches a hand-computed example, ties rounded half to even', () => {
    const quantized = quantizeRtn(W, 4, 4, { bits: 2, groupSize: 4 });
    expect(Array.from(quantized.scales)).toEqual([1, 1, 1, 2 / 3]);
    expect(Array.from(quantized.zeros)).toEqual([1, 0, 2, 2]);
    expect(Array.from(quantized.q)).toEqual([
      0, 0, 0, 2,
      1, 2, 2, 2,
      1, 2, 2, 2,
      3, 3, 3, 2,
    ]);
    expect(Array.from(dequantize(quantized))).toEqual([
      -1, 0, -2, 0,
      0, 2, 0, 0,
      0, 2, 0, 0,
      2, 3, 1, 0,
    ]);
  });

  for (const bits of ALL_BITS) {
    for (const [K, N, g] of [[96, 5, 32], [64, 33, 8], [48, 1, 16], [100, 7, 25], [37, 3, 37]] as const) {
      it(`${bits} bits, K=${K}, N=${N}, g=${g}: |W − Ŵ| ≤ s/2, z integer in range, 0 exact`, () => {
        const rng = createRng(1000 * bits + K + N);
        const weight = randomNormalMatrix(rng, K, N, 0.05);
        weight[3 * N] = 0; // a zero weight must dequantize to exactly zero
        if (K > 8) for (let i = 0; i < 8; i++) weight[i * N] = Math.abs(weight[i * N]); // a one-sided group when g = 8
        const quantized = quantizeRtn(weight, K, N, { bits, groupSize: g });
        const dense = dequantize(quantized);
        const groups = K / g;
        expect(quantized.scales.length).toBe(groups * N);
        for (let k = 0; k < groups; k++) {
          for (let o = 0; o < N; o++) {
            const z = quantized.zeros[k * N + o];
            expect(Number.isInteger(z) && z >= 0 && z <= maxCode(bits)).toBe(true);
            expect(quantized.scales[k * N + o]).toBeGreaterThan(0);
          }
        }
        for (let i = 0; i < K; i++) {
          for (let o = 0; o < N; o++) {
            const s = quantized.scales[Math.floor(i / g) * N + o];
            expect(quantized.q[i * N + o]).toBeLessThanOrEqual(maxCode(bits));
            expect(Math.abs(weight[i * N + o] - dense[i * N + o])).toBeLessThanOrEqual(s / 2 * (1 + 1e-12));
          }
        }
        expect(dense[3 * N]).toBe(0);
      });
    }
  }

  it('refuses a group size that does not divide K and unsupported bit widths', () => {
    expect(() => quantizeRtn(new Float64Array(10), 10, 1, { bits: 4, groupSize: 4 })).toThrow(/does not divide/);
    expect(() => quantizeRtn(new Float64Array(8), 8, 1, { bits: 5 as Bits, groupSize: 4 })).toThrow(/bits/);
  });
});

describe('quantizeRtn, symmetric (GPTQ sym=True)', () => {
  it('matches a hand-computed example, including GPTQ\'s one-sided-group quirk', () => {
    // 2 bits, maxq = 3, z = 2 always.
    //   col 0: [−1.5, 0.75] → xmax = 1.5, xmin = −1.5, s = 1; round(−1.5) = −2 → q 0, 0.75 → 1 → q 3
    //   col 1: all ≥ 0 → xmin stays 0, s = 3/3 = 1, z = 2: 3 → round(3) + 2 = 5 clamps to 3, Ŵ = 1
    const W = Float64Array.from([
      -1.5, 0.5,
      0.5, 3,
      0, 1,
      0.75, 0,
    ]);
    const quantized = quantizeRtn(W, 4, 2, { bits: 2, groupSize: 4, symmetric: true });
    expect(Array.from(quantized.scales)).toEqual([1, 1]);
    expect(Array.from(quantized.zeros)).toEqual([2, 2]);
    expect(Array.from(quantized.q)).toEqual([0, 2, 2, 3, 2, 3, 3, 2]);
    expect(Array.from(dequantize(quantized))).toEqual([-2, 0, 0, 1, 0, 1, 1, 0]);
  });

  for (const bits of ALL_BITS) {
    it(`${bits} bits: z = 2^(b−1), s = 2·max|W|/(2^b − 1), |W − Ŵ| ≤ s/2 where the group has a negative weight`, () => {
      const [K, N, g] = [64, 9, 16];
      const rng = createRng(77 + bits);
      const weight = randomNormalMatrix(rng, K, N, 0.1);
      weight[0] = -Math.abs(weight[0]); // keep group 0 of column 0 two-sided whatever the draw
      const quantized = quantizeRtn(weight, K, N, { bits, groupSize: g, symmetric: true });
      const dense = dequantize(quantized);
      for (let k = 0; k < K / g; k++) {
        for (let o = 0; o < N; o++) {
          let largest = 0;
          let hasNegative = false;
          for (let i = k * g; i < (k + 1) * g; i++) {
            largest = Math.max(largest, Math.abs(weight[i * N + o]));
            hasNegative ||= weight[i * N + o] < 0;
          }
          const s = quantized.scales[k * N + o];
          expect(quantized.zeros[k * N + o]).toBe(2 ** (bits - 1));
          if (!hasNegative) continue;
          expect(s).toBeCloseTo((2 * largest) / maxCode(bits), 15);
          for (let i = k * g; i < (k + 1) * g; i++) {
            expect(Math.abs(weight[i * N + o] - dense[i * N + o])).toBeLessThanOrEqual(s / 2 * (1 + 1e-12));
          }
        }
      }
    });
  }
});

describe('quantizeRtnByRows', () => {
  it('equals quantizeRtn of the transposed, zero-padded matrix, on random ragged shapes, both modes, every width', () => {
    const rng = createRng(41);
    for (let trial = 0; trial < 12; trial++) {
      const bits = ALL_BITS[trial % ALL_BITS.length]!;
      const symmetric = trial % 3 === 0;
      const groupSize = 1 + rng.int(9);
      const inFeatures = 1 + rng.int(40); // the weight's; padded up to a multiple of the group
      const padded = Math.ceil(inFeatures / groupSize) * groupSize;
      const outFeatures = 1 + rng.int(13);
      const rows = randomNormalMatrix(rng, outFeatures, inFeatures); // [out, in], llama2.c's layout
      if (trial === 5) rows.fill(0, 0, Math.min(rows.length, 2 * inFeatures)); // all-zero groups
      const inputMajor = new Float64Array(padded * outFeatures);
      for (let o = 0; o < outFeatures; o++) for (let i = 0; i < inFeatures; i++) inputMajor[i * outFeatures + o] = rows[o * inFeatures + i]!;
      const expected = quantizeRtn(inputMajor, padded, outFeatures, { bits, groupSize, symmetric });
      const asked: number[] = [];
      const byRows = quantizeRtnByRows(padded, outFeatures, { bits, groupSize, symmetric }, (o, into) => {
        asked.push(o);
        expect([...into].every((x) => x === 0)).toBe(true);
        into.set(rows.subarray(o * inFeatures, (o + 1) * inFeatures));
      });
      expect(asked).toEqual(Array.from({ length: outFeatures }, (_, o) => o));
      expect(byRows).toEqual(expected);
    }
  });
});
