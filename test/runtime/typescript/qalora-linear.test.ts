// The quantized linear with a QA-LoRA adapter: its forward (which never materializes Ŵ) and
// backward against the float64 oracle in src/reference, and its backward against finite
// differences — with dropout, for both poolings, and for the dense (unquantized) base.
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../../src/quant/dequantize.ts';
import { quantizeRtn } from '../../../src/quant/rtn.ts';
import type { Pooling } from '../../../src/reference/adapter.ts';
import { qaloraBackward, qaloraForward } from '../../../src/reference/qalora-layer.ts';
import { createRng } from '../../../src/reference/random.ts';
import { dropoutDraws, expandDropoutMask } from '../../../src/runtime/typescript/dropout-draws.ts';
import { qaloraLinearBackward, qaloraLinearForward, type AdapterActivations, type QaLoraLinear } from '../../../src/runtime/typescript/qalora-linear.ts';
import { dot, gradientError, randomArray } from '../../support/finite-differences.ts';
import { relativeMaxError } from '../../support/relative-error.ts';

const ROWS = 6, K = 12, N = 5, GROUP = 4, RANK = 3;

// Group 4 runs the four-rows-at-a-time loops only; group 6 also their remainder loops.
function makeLayer(seed: number, pooling: Pooling, dropout: number, dense = false, group = GROUP) {
  const rng = createRng(seed);
  const GROUP = group, GROUPS = K / group;
  const weight = quantizeRtn(randomArray(rng, K * N), K, N, { bits: 3, groupSize: GROUP });
  const adapter = {
    groupSize: GROUP, rank: RANK, pooling, scaling: 16 / RANK, dropout,
    a: randomArray(rng, GROUPS * RANK), b: randomArray(rng, RANK * N),
    gradA: new Float64Array(GROUPS * RANK), gradB: new Float64Array(RANK * N),
  };
  const layer: QaLoraLinear = dense
    ? { base: { kind: 'dense', inFeatures: K, outFeatures: N, weight: dequantize(weight) }, adapter }
    : { base: { kind: 'quantized', weight }, adapter };
  // The layer is handed the draws; the oracle the mask they expand to.
  const draws = dropout > 0 ? dropoutDraws(seed, 1000 + seed) : undefined;
  const mask = draws === undefined ? undefined : expandDropoutMask(draws, ROWS * GROUPS, dropout);
  const saved: AdapterActivations = { u: new Float64Array(ROWS * GROUPS), v: new Float64Array(ROWS * RANK), mask: draws };
  return { rng, weight, adapter, layer, saved, mask, x: randomArray(rng, ROWS * K), r: randomArray(rng, ROWS * N) };
}

describe('quantized linear with a QA-LoRA adapter', () => {
  for (const [pooling, group] of [['mean', 4], ['sum', 4], ['mean', 6]] as const) {
    it(`matches the float64 oracle (dense Ŵ) forward and backward, ${pooling} pooling, group ${group}, dropout 0.3`, () => {
      const { weight, adapter, layer, saved, mask, x, r } = makeLayer(11, pooling, 0.3, false, group);
      const y = new Float64Array(ROWS * N);
      qaloraLinearForward(y, x, ROWS, layer, saved);
      const oracleLayer = { inFeatures: K, outFeatures: N, weight: dequantize(weight), adapter: { ...adapter, a: adapter.a as Float64Array, b: adapter.b as Float64Array } };
      const dropout = mask === undefined ? undefined : { keep: mask, p: 0.3 };
      const oracle = qaloraForward(oracleLayer, x, ROWS, dropout);
      expect(relativeMaxError(y, oracle.y)).toBeLessThan(1e-13);
      expect(relativeMaxError(saved.u as Float64Array, oracle.u)).toBeLessThan(1e-13);
      expect(relativeMaxError(saved.v as Float64Array, oracle.v)).toBeLessThan(1e-13);

      const dx = new Float64Array(ROWS * K);
      qaloraLinearBackward(dx, r, ROWS, layer, saved);
      const grads = qaloraBackward(oracleLayer, r, oracle, ROWS, dropout);
      expect(relativeMaxError(dx, grads.dx)).toBeLessThan(1e-13);
      expect(relativeMaxError(adapter.gradA, grads.dA)).toBeLessThan(1e-13);
      expect(relativeMaxError(adapter.gradB, grads.dB)).toBeLessThan(1e-13);
    });
  }

  for (const dense of [false, true]) {
    it(`backward matches finite differences for x, A and B (${dense ? 'dense' : 'quantized'} base, dropout)`, () => {
      const { adapter, layer, saved, x, r } = makeLayer(12, 'mean', 0.25, dense);
      const y = new Float64Array(ROWS * N);
      const loss = () => (qaloraLinearForward(y, x, ROWS, layer, saved), dot(y, r));
      loss();
      const dx = new Float64Array(ROWS * K);
      qaloraLinearBackward(dx, r, ROWS, layer, saved);
      expect(gradientError(loss, x, dx)).toBeLessThan(1e-8);
      expect(gradientError(loss, adapter.a as Float64Array, adapter.gradA as Float64Array)).toBeLessThan(1e-8);
      expect(gradientError(loss, adapter.b as Float64Array, adapter.gradB as Float64Array)).toBeLessThan(1e-8);
    });
  }

  it('with B = 0 computes x·Ŵ exactly as the base layer alone, also with fractional zeros', () => {
    const { weight, adapter, layer, saved, x } = makeLayer(13, 'mean', 0);
    adapter.b.fill(0);
    const merged = { ...weight, zeros: weight.zeros.map((z, i) => z + 0.37 * Math.sin(i)) };
    for (const w of [weight, merged]) {
      const withAdapter = new Float64Array(ROWS * N), alone = new Float64Array(ROWS * N);
      qaloraLinearForward(withAdapter, x, ROWS, { base: { kind: 'quantized', weight: w }, adapter }, saved);
      qaloraLinearForward(alone, x, ROWS, { base: { kind: 'quantized', weight: w }, adapter: null });
      expect(withAdapter).toEqual(alone);
      const oracle = qaloraForward({ inFeatures: K, outFeatures: N, weight: dequantize(w), adapter: { ...adapter, a: adapter.a as Float64Array, b: adapter.b as Float64Array } }, x, ROWS);
      expect(relativeMaxError(alone, oracle.y)).toBeLessThan(1e-13);
    }
    expect(() => qaloraLinearForward(new Float64Array(ROWS * N), x, ROWS, { base: layer.base, adapter: { ...adapter, groupSize: 6 } }, saved))
      .toThrow(/group size 6 differs from the quantization group size 4/);
  });
});
