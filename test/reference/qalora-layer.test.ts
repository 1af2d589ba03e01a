import { describe, expect, it } from 'vitest';
import type { Pooling, QaLoraAdapter } from '../../src/reference/adapter.ts';
import type { DropoutMask } from '../../src/reference/dropout.ts';
import { matmul } from '../../src/reference/matrix.ts';
import { qaloraBackward, qaloraForward, type QaLoraLayer } from '../../src/reference/qalora-layer.ts';
import { createRng, randomNormalMatrix, type Rng } from '../../src/reference/random.ts';
import { dot, finiteDifferenceGradient, maxAbs, maxAbsDifference } from './gradient-check.ts';
import { relativeMaxError } from '../support/relative-error.ts';

interface Shape { T: number; K: number; g: number; N: number; r: number }

function makeLayer(rng: Rng, s: Shape, pooling: Pooling, withBias = false): QaLoraLayer {
  const L = s.K / s.g;
  const adapter: QaLoraAdapter = {
    groupSize: s.g, rank: s.r, pooling, scaling: 16 / s.r,
    a: randomNormalMatrix(rng, L, s.r, 0.3), b: randomNormalMatrix(rng, s.r, s.N, 0.3), // B ≠ 0, or dA would be 0
  };
  const layer: QaLoraLayer = { inFeatures: s.K, outFeatures: s.N, weight: randomNormalMatrix(rng, s.K, s.N, 0.2), adapter };
  return withBias ? { ...layer, bias: randomNormalMatrix(rng, 1, s.N) } : layer;
}

function randomMask(rng: Rng, length: number, p: number): DropoutMask {
  const keep = Uint8Array.from({ length }, () => (rng.next() < p ? 0 : 1));
  keep[0] = 0; // at least one dropped and one kept, whatever the draw
  keep[length - 1] = 1;
  return { keep, p };
}

// y written straight from QALORA.md's sums, sharing no code with the layer.
function forwardBySums(layer: QaLoraLayer, x: Float64Array, T: number, mask?: DropoutMask): Float64Array {
  const { inFeatures: K, outFeatures: N, weight, bias, adapter } = layer;
  const { groupSize: g, rank: r, scaling, a, b, pooling } = adapter;
  const L = K / g;
  const y = new Float64Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < N; o++) {
      let sum = bias ? bias[o] : 0;
      for (let i = 0; i < K; i++) sum += x[t * K + i] * weight[i * N + o];
      for (let k = 0; k < L; k++) {
        let pooled = 0;
        for (let j = 0; j < g; j++) pooled += x[t * K + k * g + j];
        if (pooling === 'mean') pooled /= g;
        if (mask) pooled = mask.keep[t * L + k] ? pooled / (1 - mask.p) : 0;
        for (let j = 0; j < r; j++) sum += scaling * pooled * a[k * r + j] * b[j * N + o];
      }
      y[t * N + o] = sum;
    }
  }
  return y;
}

describe('qaloraForward', () => {
  const shape: Shape = { T: 3, K: 48, g: 16, N: 17, r: 2 };

  for (const pooling of ['mean', 'sum'] as const) {
    for (const dropout of [false, true]) {
      it(`${pooling} pooling${dropout ? ', dropout' : ''}, bias: matches QALORA.md term by term`, () => {
        const rng = createRng(pooling === 'mean' ? 1 : 2);
        const layer = makeLayer(rng, shape, pooling, true);
        const x = randomNormalMatrix(rng, shape.T, shape.K);
        const mask = dropout ? randomMask(rng, shape.T * (shape.K / shape.g), 0.25) : undefined;
        const { y, u, v } = qaloraForward(layer, x, shape.T, mask);
        const expected = forwardBySums(layer, x, shape.T, mask);
        expect(maxAbsDifference(y, expected)).toBeLessThanOrEqual(1e-12 * maxAbs(expected));
        expect(u.length).toBe(shape.T * (shape.K / shape.g));
        expect(v.length).toBe(shape.T * shape.r);
      });
    }
  }

  it('equals the quantized base when B = 0 (step 0)', () => {
    const rng = createRng(3);
    const layer = makeLayer(rng, shape, 'mean');
    const zeroB = { ...layer, adapter: { ...layer.adapter, b: new Float64Array(shape.r * shape.N) } };
    const x = randomNormalMatrix(rng, shape.T, shape.K);
    expect(qaloraForward(zeroB, x, shape.T).y).toEqual(matmul(x, layer.weight, shape.T, shape.K, shape.N));
  });

  it('sum pooling with A/g computes the same function as mean pooling with A', () => {
    const rng = createRng(4);
    const mean = makeLayer(rng, shape, 'mean');
    const sum = { ...mean, adapter: { ...mean.adapter, pooling: 'sum' as const, a: mean.adapter.a.map((value) => value / shape.g) } };
    const x = randomNormalMatrix(rng, shape.T, shape.K);
    const yMean = qaloraForward(mean, x, shape.T).y;
    expect(maxAbsDifference(qaloraForward(sum, x, shape.T).y, yMean)).toBeLessThanOrEqual(1e-12 * maxAbs(yMean));
  });

  it('dropout: an all-keep mask with p = 0 is the identity; kept values scale by 1/(1−p)', () => {
    const rng = createRng(5);
    const layer = makeLayer(rng, shape, 'mean');
    const x = randomNormalMatrix(rng, shape.T, shape.K);
    const L = shape.K / shape.g;
    const plain = qaloraForward(layer, x, shape.T);
    expect(qaloraForward(layer, x, shape.T, { keep: new Uint8Array(shape.T * L).fill(1), p: 0 }).y).toEqual(plain.y);
    const halved = qaloraForward(layer, x, shape.T, { keep: new Uint8Array(shape.T * L).fill(1), p: 0.5 });
    expect(maxAbsDifference(halved.v, plain.v.map((value) => 2 * value))).toBeLessThanOrEqual(1e-12 * maxAbs(plain.v));
    expect(halved.u).toEqual(plain.u); // u is saved before dropout
    const dropped = qaloraForward(layer, x, shape.T, { keep: new Uint8Array(shape.T * L), p: 0.5 });
    expect(dropped.y).toEqual(matmul(x, layer.weight, shape.T, shape.K, shape.N));
  });
});

describe('qaloraBackward against central finite differences', () => {
  // Ragged shapes: T ∈ {1,3,7}, K ∈ {32,48,96}, g ∈ {8,16,32}, N ∈ {5,17}, r ∈ {1,2,4}.
  const shapes: Shape[] = [
    { T: 1, K: 32, g: 8, N: 5, r: 1 },
    { T: 3, K: 32, g: 32, N: 17, r: 4 },
    { T: 7, K: 48, g: 16, N: 5, r: 2 },
    { T: 3, K: 48, g: 8, N: 17, r: 1 },
    { T: 1, K: 96, g: 32, N: 17, r: 2 },
    { T: 7, K: 96, g: 16, N: 5, r: 4 },
    { T: 3, K: 96, g: 8, N: 5, r: 2 },
    { T: 7, K: 32, g: 16, N: 17, r: 1 },
  ];

  for (const [index, s] of shapes.entries()) {
    for (const pooling of ['mean', 'sum'] as const) {
      for (const dropout of [false, true]) {
        it(`T=${s.T} K=${s.K} g=${s.g} N=${s.N} r=${s.r}, ${pooling}${dropout ? ', dropout p=0.25' : ''}: dx, dA, dB rel err ≤ 1e-6`, () => {
          const rng = createRng(100 * index + (pooling === 'sum' ? 10 : 0) + (dropout ? 1 : 0));
          const layer = makeLayer(rng, s, pooling, true);
          const x = randomNormalMatrix(rng, s.T, s.K);
          const dy = randomNormalMatrix(rng, s.T, s.N);
          const mask = dropout ? randomMask(rng, s.T * (s.K / s.g), 0.25) : undefined;
          const loss = () => dot(qaloraForward(layer, x, s.T, mask).y, dy);

          const saved = qaloraForward(layer, x, s.T, mask);
          const grads = qaloraBackward(layer, dy, saved, s.T, mask);

          const checks: Array<[string, Float64Array, Float64Array]> = [
            ['dx', grads.dx, x], ['dA', grads.dA, layer.adapter.a], ['dB', grads.dB, layer.adapter.b],
          ];
          for (const [name, analytic, params] of checks) {
            expect(analytic.length, name).toBe(params.length);
            expect(maxAbs(analytic), name).toBeGreaterThan(0);
            expect(relativeMaxError(analytic, finiteDifferenceGradient(loss, params)), name).toBeLessThanOrEqual(1e-6);
          }
          expect(grads.du.length).toBe(s.T * (s.K / s.g));
          expect(grads.dv.length).toBe(s.T * s.r);
        });
      }
    }
  }

  it('the adapter part of dx is unpool(du) and dA = drop(u)ᵀ·dv', () => {
    const s: Shape = { T: 3, K: 48, g: 16, N: 5, r: 2 };
    const rng = createRng(9);
    const layer = makeLayer(rng, s, 'mean');
    const x = randomNormalMatrix(rng, s.T, s.K);
    const dy = randomNormalMatrix(rng, s.T, s.N);
    const grads = qaloraBackward(layer, dy, qaloraForward(layer, x, s.T), s.T);
    const frozen = { ...layer, adapter: { ...layer.adapter, b: new Float64Array(s.r * s.N) } };
    const baseDx = qaloraBackward(frozen, dy, qaloraForward(frozen, x, s.T), s.T).dx;
    for (let t = 0; t < s.T; t++) {
      for (let i = 0; i < s.K; i++) {
        const adapterPart = grads.dx[t * s.K + i] - baseDx[t * s.K + i];
        expect(adapterPart).toBeCloseTo(grads.du[t * (s.K / s.g) + Math.floor(i / s.g)] / s.g, 12);
      }
    }
  });
});
