// The host side of the kernels' layouts: bf16 / fp16 rounding as the device's _rn conversions,
// and GPTQ v1 qweight bit streams (3-bit codes straddle words).
import { describe, expect, it } from 'vitest';
import { bf16Bits, bf16Value, f16Bits, f16Value } from '../../../src/runtime/cuda/host-data.ts';
import { kernelQweight, packParts, packScalesAndZeros } from '../../../src/runtime/kernel-buffers.ts';
import { createRng } from '../../../src/reference/random.ts';

describe('activation conversions', () => {
  it('bf16: round to nearest, ties to even, NaN and infinities kept', () => {
    expect(bf16Bits(1)).toBe(0x3f80);
    expect(bf16Value(bf16Bits(1 + 2 ** -8))).toBe(1); // a tie: to the even mantissa
    expect(bf16Value(bf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6); // a tie: up to even
    expect(bf16Value(bf16Bits(1 + 2 ** -8 + 2 ** -12))).toBe(1 + 2 ** -7);
    expect(bf16Value(bf16Bits(-Infinity))).toBe(-Infinity);
    expect(bf16Value(bf16Bits(NaN))).toBeNaN();
    const rng = createRng(3);
    for (let i = 0; i < 1000; i++) {
      const x = (rng.next() - 0.5) * 2 ** Math.floor(rng.next() * 40 - 20);
      expect(Math.abs(bf16Value(bf16Bits(x)) - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -8);
    }
  });

  it('fp16: normal, subnormal, overflow', () => {
    expect(f16Bits(1)).toBe(0x3c00);
    expect(f16Bits(-2)).toBe(0xc000);
    expect(f16Bits(65504)).toBe(0x7bff);
    expect(f16Bits(70000)).toBe(0x7c00);
    expect(f16Value(f16Bits(2 ** -24))).toBe(2 ** -24);
    expect(f16Value(f16Bits(2 ** -26))).toBe(0);
    expect(f16Value(f16Bits(1 + 2 ** -11))).toBe(1); // tie to even
    expect(f16Value(f16Bits(0.1))).toBeCloseTo(0.0999755859375, 12);
  });
});

describe('GPTQ v1 qweight', () => {
  for (const bits of [2, 3, 4, 8] as const) {
    it(`${bits}-bit codes read back bit stream by bit stream`, () => {
      const K = 43, N = 5;
      const rng = createRng(bits);
      const q = Uint8Array.from({ length: K * N }, () => Math.floor(rng.next() * 2 ** bits));
      const packed = kernelQweight({ q, inFeatures: K, outFeatures: N, bits });
      expect(packed.length).toBe(Math.ceil((K * bits) / 32) * N);
      for (let i = 0; i < K; i++) for (let o = 0; o < N; o++) {
        let stream = 0n;
        for (let w = Math.ceil((K * bits) / 32) - 1; w >= 0; w--) stream = (stream << 32n) | BigInt(packed[w * N + o]!);
        expect(Number((stream >> BigInt(i * bits)) & BigInt(2 ** bits - 1))).toBe(q[i * N + o]);
      }
    });
  }

  it('scales then zeros; A then B', () => {
    expect([...packScalesAndZeros({ scales: Float64Array.of(0.5, 2), zeros: Float64Array.of(7, 8.25) })]).toEqual([0.5, 2, 7, 8.25]);
    expect([...packParts([[1, 2], [3]])]).toEqual([1, 2, 3]);
  });
});
