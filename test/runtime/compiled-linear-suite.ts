// The compiled-linear layer's tests, written once (src/runtime/compiled-linear.ts is written
// once) and instantiated for every device port: for webgpu on Dawn, for cuda on the simulated
// device (test/runtime/cuda/simulated-device.ts). Each case's layer runs forward and backward
// on the kernels the compiler emitted for it and must match the TypeScript op; a layer no
// kernel fits (a dense base) runs on the fallback ops, and the stats say why.
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompiledLinearStats } from '../../src/runtime/compiled-linear.ts';
import type { TrainingOps } from '../../src/runtime/ops.ts';
import type { Floats } from '../../src/runtime/typescript/floats.ts';
import { TYPESCRIPT_OPS } from '../../src/runtime/typescript/ops.ts';
import type { Plan } from '../../src/plan/plan.ts';
import { syntheticPlan, type KernelCase } from '../ir/kernel-cases.ts';
import { relativeL2Error } from '../support/relative-error.ts';
import { linearCaseData, type LinearCase } from './linear-case.ts';

export const COMPILED_LINEAR_CASES: readonly LinearCase[] = [
  { name: '4-bit, group 16, rank 4, mean', rows: 19, K: 64, N: 41, group: 16, bits: 4, rank: 4, pooling: 'mean' },
  { name: '4-bit, group 16, rank 4, one row (decode)', rows: 1, K: 64, N: 40, group: 16, bits: 4, rank: 4, pooling: 'mean' },
  { name: '4-bit, group 32, rank 8, 70 rows (tensor cores on CUDA)', rows: 70, K: 64, N: 72, group: 32, bits: 4, rank: 8, pooling: 'mean' },
  { name: '3-bit, group 7 (ragged), rank 3, sum, dropout', rows: 19, K: 35, N: 13, group: 7, bits: 3, rank: 3, pooling: 'sum', dropout: 0.3 },
  { name: '2-bit, group 43, rank 5, merged (fractional) zeros', rows: 8, K: 172, N: 23, group: 43, bits: 2, rank: 5, fractionalZeros: true },
  { name: '4-bit symmetric, fp16 scales, group 16, rank 4', rows: 13, K: 48, N: 19, group: 16, bits: 4, rank: 4, symmetricFp16: true },
  { name: '8-bit (codes up to 255), group 6, no adapter', rows: 21, K: 30, N: 17, group: 6, bits: 8, rank: 0 },
  { name: 'dense base, rank 4, dropout', rows: 23, K: 24, N: 9, group: 8, bits: null, rank: 4, dropout: 0.5 },
];

/** The kernel the compiler emits for a quantized case (a dense base has none). */
export function kernelCaseOf(c: LinearCase): KernelCase[] {
  if (c.bits === null) return [];
  const adapter = c.rank === 0 ? undefined : { rank: c.rank, pooling: c.pooling ?? 'mean', ...(c.dropout ? { dropout: c.dropout } : {}) };
  return [{ inFeatures: c.K, outFeatures: c.N, bits: c.bits, group: c.group, ...(adapter ? { adapter } : {}) }];
}

/** The case's forward then backward on `ops`: everything they wrote, synced to the host. */
export async function runLinearCase(ops: TrainingOps, c: LinearCase): Promise<Record<string, Floats>> {
  const data = linearCaseData(c);
  await ops.qaloraLinearForward(data.y, data.x, c.rows, data.layer, data.saved);
  await ops.qaloraLinearBackward(data.dx, data.dy, c.rows, data.layer, data.saved);
  const outputs = data.outputs();
  await ops.syncToHost(Object.values(outputs));
  return outputs;
}

export interface CompiledLinearTarget {
  /** The backend's ops, with the compiled-linear layer's stats. */
  readonly ops: TrainingOps & { readonly stats: CompiledLinearStats };
  /** ‖got − ref‖ / ‖ref‖ allowed: float32 kernels near 1e-6, bf16 activations near 1e-2. */
  readonly tolerance: number;
}

export function describeCompiledLinear(name: string, skip: boolean, open: (plan: Plan) => Promise<CompiledLinearTarget>): void {
  describe.skipIf(skip)(`${name}: the compiled-linear layer matches the TypeScript op`, () => {
    let target: CompiledLinearTarget;
    beforeAll(async () => {
      target = await open(syntheticPlan(COMPILED_LINEAR_CASES.flatMap(kernelCaseOf)));
    }, 120_000);

    it.each(COMPILED_LINEAR_CASES)('$name: y, u, v, dx, dA, dB', async (c) => {
      const { ops, tolerance } = target;
      const run = (with_: TrainingOps) => runLinearCase(with_, c);
      const before = { ...ops.stats };
      const expected = await run(TYPESCRIPT_OPS);
      const actual = await run(ops);
      for (const [output, value] of Object.entries(expected)) {
        expect(relativeL2Error(actual[output]!, value), `${c.name}: ${output}`).toBeLessThanOrEqual(tolerance);
      }
      if (c.bits === null) {
        expect(ops.stats.fallbackForward - before.fallbackForward + ops.stats.fallbackBackward - before.fallbackBackward).toBe(2);
        expect([...ops.stats.fallbacks].join('\n')).toMatch(new RegExp(`${c.K}×${c.N} dense.*not quantized`));
      } else {
        expect(ops.stats.compiledForward - before.compiledForward + ops.stats.compiledBackward - before.compiledBackward).toBe(2);
      }
    });
  });
}
