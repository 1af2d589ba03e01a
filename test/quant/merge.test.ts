import { describe, expect, it } from 'vitest';
import { dequantize } from '../../src/quant/dequantize.ts';
import { packQzeros, unpackQzeros } from '../../src/quant/gptq-pack.ts';
import { mergeAdapterIntoZeros, roundZerosForGptq } from '../../src/quant/merge.ts';
import { maxCode, type Bits } from '../../src/quant/quantized-weight.ts';
import { quantizeRtn } from '../../src/quant/rtn.ts';
import type { Pooling, QaLoraAdapter } from '../../src/reference/adapter.ts';
import { matmul } from '../../src/reference/matrix.ts';
import { qaloraForward } from '../../src/reference/qalora-layer.ts';
import { createRng, randomNormalMatrix } from '../../src/reference/random.ts';
import { maxAbs, maxAbsDifference } from '../reference/gradient-check.ts';

interface Case { K: number; N: number; g: number; r: number; bits: Bits; pooling: Pooling }

const CASES: Case[] = [
  { K: 64, N: 5, g: 32, r: 4, bits: 4, pooling: 'mean' },
  { K: 96, N: 17, g: 16, r: 2, bits: 3, pooling: 'mean' },
  { K: 48, N: 1, g: 8, r: 1, bits: 2, pooling: 'sum' },
  { K: 100, N: 33, g: 25, r: 3, bits: 8, pooling: 'sum' },
  { K: 96, N: 7, g: 32, r: 4, bits: 4, pooling: 'sum' },
];

function setup(c: Case, seed: number, adapterScale = 0.02) {
  const rng = createRng(seed);
  const base = quantizeRtn(randomNormalMatrix(rng, c.K, c.N, 0.05), c.K, c.N, { bits: c.bits, groupSize: c.g });
  const L = c.K / c.g;
  const adapter: QaLoraAdapter = {
    groupSize: c.g, rank: c.r, pooling: c.pooling, scaling: 16 / c.r,
    a: randomNormalMatrix(rng, L, c.r, adapterScale), b: randomNormalMatrix(rng, c.r, c.N, adapterScale),
  };
  return { rng, base, adapter, L };
}

describe('mergeAdapterIntoZeros', () => {
  for (const c of CASES) {
    const name = `K=${c.K} N=${c.N} g=${c.g} r=${c.r} ${c.bits}-bit ${c.pooling}`;

    it(`${name}: s·(q − z') = Ŵ + c·σ·(A·B)[k(i),o] (c = 1/g mean, 1 sum)`, () => {
      const { base, adapter, L } = setup(c, c.K + c.N);
      const merged = mergeAdapterIntoZeros(base, adapter);
      expect(merged.q).toBe(base.q);
      expect(merged.scales).toBe(base.scales);
      const ab = matmul(adapter.a, adapter.b, L, c.r, c.N);
      const perGroup = adapter.scaling * (c.pooling === 'mean' ? 1 / c.g : 1);
      const baseDense = dequantize(base);
      const expected = baseDense.map((w, index) => {
        const [i, o] = [Math.floor(index / c.N), index % c.N];
        return w + perGroup * ab[Math.floor(i / c.g) * c.N + o];
      });
      const mergedDense = dequantize(merged);
      expect(maxAbsDifference(mergedDense, expected)).toBeLessThanOrEqual(1e-12);
      // The adapter is not negligible, so a missing or extra 1/g would fail the check above.
      expect(maxAbsDifference(mergedDense, baseDense)).toBeGreaterThan(1e-4);
    });

    it(`${name}: x·Ŵ' equals the adapter layer's forward`, () => {
      const { rng, base, adapter } = setup(c, 7 * c.K + c.N);
      const T = 3;
      const x = randomNormalMatrix(rng, T, c.K);
      const layerY = qaloraForward({ inFeatures: c.K, outFeatures: c.N, weight: dequantize(base), adapter }, x, T).y;
      const mergedY = matmul(x, dequantize(mergeAdapterIntoZeros(base, adapter)), T, c.K, c.N);
      expect(maxAbsDifference(mergedY, layerY)).toBeLessThanOrEqual(1e-12 * Math.max(1, maxAbs(layerY)));
    });

    it(`${name}: GPTQ rounding: integer zeros in [1, 2^b], error reported and ≤ s/2 without clamping`, () => {
      const { base, adapter } = setup(c, 13 * c.K + c.N);
      // Keep every z' inside [1, 2^b] so no clamping happens: shift the base zeros to the middle.
      const centred = { ...base, zeros: base.zeros.map(() => 2 ** (c.bits - 1)) };
      const merged = mergeAdapterIntoZeros(centred, adapter);
      const { weight: rounded, maxAbsWeightError, clampedGroups } = roundZerosForGptq(merged);
      expect(clampedGroups).toBe(0);
      for (const z of rounded.zeros) expect(Number.isInteger(z) && z >= 1 && z <= maxCode(c.bits) + 1).toBe(true);
      const actual = maxAbsDifference(dequantize(rounded), dequantize(merged));
      expect(maxAbsWeightError).toBeCloseTo(actual, 14);
      expect(maxAbsWeightError).toBeLessThanOrEqual(maxAbs(merged.scales) / 2 * (1 + 1e-12));
      expect(maxAbsWeightError).toBeGreaterThan(0); // fractional zeros really were rounded
      // Every weight of a group moves by the same s·(z' − round(z')): the error is correlated.
      const group0Shift = dequantize(rounded)[0] - dequantize(merged)[0];
      for (let i = 0; i < c.g; i++) expect(dequantize(rounded)[i * c.N] - dequantize(merged)[i * c.N]).toBeCloseTo(group0Shift, 14);
      expect(unpackQzeros(packQzeros(rounded.zeros, c.K / c.g, c.N, c.bits), c.K / c.g, c.N, c.bits)).toEqual(rounded.zeros);
    });
  }

  it('GPTQ rounding clamps zeros outside [1, 2^b] and reports the larger error', () => {
    const weight = quantizeRtn(Float64Array.from([-1, 0, 1, 2]), 4, 1, { bits: 2, groupSize: 4 }); // s = 1
    const { weight: rounded, maxAbsWeightError, clampedGroups } = roundZerosForGptq({ ...weight, zeros: Float64Array.from([0.2]) });
    expect(Array.from(rounded.zeros)).toEqual([1]);
    expect(clampedGroups).toBe(1);
    expect(maxAbsWeightError).toBeCloseTo(0.8, 15);
    const high = roundZerosForGptq({ ...weight, zeros: Float64Array.from([5.5]) });
    expect(Array.from(high.weight.zeros)).toEqual([4]);
    expect(high.maxAbsWeightError).toBeCloseTo(1.5, 15);
  });

  it('refuses an adapter whose group size differs from the quantization\'s', () => {
    const { base, adapter } = setup(CASES[0], 1);
    expect(() => mergeAdapterIntoZeros(base, { ...adapter, groupSize: 16 })).toThrow(/group size/);
  });
});
