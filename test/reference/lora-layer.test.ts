import { describe, expect, it } from 'vitest';
import { loraBackward, loraForward, type LoraLayer } from '../../src/reference/lora-layer.ts';
import { qaloraForward } from '../../src/reference/qalora-layer.ts';
import { createRng, randomNormalMatrix } from '../../src/reference/random.ts';
import { dot, finiteDifferenceGradient, maxAbs, maxAbsDifference } from './gradient-check.ts';
import { relativeMaxError } from '../support/relative-error.ts';

describe('plain LoRA', () => {
  for (const [T, K, N, r, dropout] of [[1, 32, 5, 1, false], [3, 48, 17, 4, true], [7, 96, 5, 2, true]] as const) {
    it(`T=${T} K=${K} N=${N} r=${r}${dropout ? ', dropout' : ''}: backward matches finite differences`, () => {
      const rng = createRng(T * K + N);
      const layer: LoraLayer = {
        inFeatures: K, outFeatures: N, rank: r, scaling: 16 / r,
        weight: randomNormalMatrix(rng, K, N, 0.2), a: randomNormalMatrix(rng, K, r, 0.3), b: randomNormalMatrix(rng, r, N, 0.3),
        bias: randomNormalMatrix(rng, 1, N),
      };
      const x = randomNormalMatrix(rng, T, K);
      const dy = randomNormalMatrix(rng, T, N);
      const mask = dropout ? { keep: Uint8Array.from({ length: T * K }, () => (rng.next() < 0.1 ? 0 : 1)), p: 0.1 } : undefined;
      const loss = () => dot(loraForward(layer, x, T, mask).y, dy);
      const { v } = loraForward(layer, x, T, mask);
      const grads = loraBackward(layer, dy, { x, v }, T, mask);
      for (const [name, analytic, params] of [['dx', grads.dx, x], ['dA', grads.dA, layer.a], ['dB', grads.dB, layer.b]] as const) {
        expect(maxAbs(analytic), name).toBeGreaterThan(0);
        expect(relativeMaxError(analytic, finiteDifferenceGradient(loss, params)), name).toBeLessThanOrEqual(1e-6);
      }
    });
  }

  it('QA-LoRA (mean pooling) is LoRA with A_lora[i] = A[k(i)]/g: the function class it restricts to', () => {
    const [T, K, N, r, g] = [3, 64, 9, 2, 16];
    const rng = createRng(42);
    const a = randomNormalMatrix(rng, K / g, r);
    const b = randomNormalMatrix(rng, r, N);
    const weight = randomNormalMatrix(rng, K, N);
    const x = randomNormalMatrix(rng, T, K);
    const qa = qaloraForward({ inFeatures: K, outFeatures: N, weight, adapter: { groupSize: g, rank: r, pooling: 'mean', scaling: 2, a, b } }, x, T).y;
    const expandedA = Float64Array.from({ length: K * r }, (_, index) => a[Math.floor(index / r / g) * r + (index % r)] / g);
    const lora = loraForward({ inFeatures: K, outFeatures: N, weight, rank: r, scaling: 2, a: expandedA, b }, x, T).y;
    expect(maxAbsDifference(qa, lora)).toBeLessThanOrEqual(1e-12 * maxAbs(qa));
  });
});
