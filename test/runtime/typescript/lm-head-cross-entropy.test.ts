// The fused lm_head + cross-entropy reference (src/runtime/typescript/lm-head-cross-entropy.ts)
// against the four unfused ops it replaces, on ragged shapes (rows, channels and a vocabulary
// that are multiples of nothing), with masked rows and ignored targets: the same loss and the
// same dx, to the last bit in float32 and in float64, since it rounds where they store.
import { describe, expect, it } from 'vitest';
import { allocateFloats } from '../../../src/runtime/typescript/floats.ts';
import { lmHeadCrossEntropy } from '../../../src/runtime/typescript/lm-head-cross-entropy.ts';
import { headCase, unfused } from '../lm-head-case.ts';

describe('lm_head and cross-entropy fused (TypeScript reference)', () => {
  for (const dtype of ['float32', 'float64'] as const) {
    it(`gives the unfused ops' loss and dx exactly, ${dtype}, 37 rows × 24 channels, vocab 999`, () => {
      const c = headCase(37, 24, 999, 5);
      const want = unfused(c, dtype, 0.7);
      const x = allocateFloats(dtype, c.x.length), classifier = allocateFloats(dtype, c.classifier.length), dx = allocateFloats(dtype, c.dx.length);
      x.set(c.x);
      classifier.set(c.classifier);
      dx.set(c.dx);
      const got = lmHeadCrossEntropy(dx, x, classifier, c.targets, c.mask, c.rows, c.channels, c.vocab, 0.7);
      expect(got.counted).toBe(want.counted);
      expect(got.counted).toBeLessThan(c.rows - 8);
      expect(got.loss).toBe(want.loss);
      expect(Float64Array.from(dx)).toEqual(want.dx);
      // A masked row's dx is untouched.
      expect(Array.from(dx.subarray(c.channels, 2 * c.channels))).toEqual(Array.from(c.dx.subarray(c.channels, 2 * c.channels)));
      // Without dx: the loss alone.
      expect(lmHeadCrossEntropy(undefined, x, classifier, c.targets, c.mask, c.rows, c.channels, c.vocab).loss).toBe(want.loss);
    });
  }

  it('counts no row: NaN, and dx unchanged; a target outside the vocabulary is refused', () => {
    const c = headCase(6, 5, 13, 2);
    const dx = c.dx.slice();
    expect(lmHeadCrossEntropy(dx, c.x, c.classifier, c.targets, new Uint8Array(6), 6, 5, 13)).toEqual({ loss: NaN, counted: 0 });
    expect(dx).toEqual(c.dx);
    expect(() => lmHeadCrossEntropy(dx, c.x, c.classifier, Int32Array.of(0, 1, 13, 2, 3, 4), undefined, 6, 5, 13)).toThrow(/target 13 at row 2 is outside the vocabulary of 13/);
  });
});
