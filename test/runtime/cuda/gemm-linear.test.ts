// The quantized linear layers' dequantize + cuBLAS path (src/runtime/cuda/gemm-linear.ts) on the
// simulated device: with the threshold at 16 tokens, the shared compiled-linear cases (bits 2, 3,
// 4 and 8, ragged groups, sum and mean pooling, dropout, no adapter, fractional zeros) run their
// calls of 16 or more tokens as dequantize → GEMMs and the shorter ones on the fused kernels, and
// either way y, u, v, dx, dA and dB match the TypeScript op; forced onto the GEMM path, every
// case does. The GEMM calls are the simulated
// device's float64 GEMM on the operands the path hands it (layouts, transposes, alpha, beta).
import { beforeAll, describe, expect, it } from 'vitest';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { describeDeviceOps, deviceOps, type DeviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { linearPathOf, type GemmLinearOptions } from '../../../src/runtime/cuda/gemm-linear.ts';
import type { Floats } from '../../../src/runtime/typescript/floats.ts';
import { TYPESCRIPT_OPS } from '../../../src/runtime/typescript/ops.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { syntheticPlan } from '../../ir/kernel-cases.ts';
import { relativeL2Error } from '../../support/relative-error.ts';
import { COMPILED_LINEAR_CASES, kernelCaseOf, runLinearCase } from '../compiled-linear-suite.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const MIN_TOKENS = 16;
const QUANTIZED = COMPILED_LINEAR_CASES.filter((c) => c.bits !== null);

async function compiledFor(plan: Plan) {
  const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
  const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
  return { linear, modelOps: manifest.modelOps, kernels: { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) } };
}

type Compiled = Awaited<ReturnType<typeof compiledFor>>;

function opsOn(compiled: Compiled, options: GemmLinearOptions, withGemm = true): { ops: DeviceOps; device: SimulatedModelOpDevice } {
  const device = new SimulatedModelOpDevice(compiled.linear, compiled.modelOps);
  if (!withGemm) device.withoutGemm();
  return { device, ops: deviceOps(device, compiled.kernels, TYPESCRIPT_OPS, 'bf16', options) };
}

function expectMatches(actual: Record<string, Floats>, expected: Record<string, Floats>, name: string): void {
  for (const [output, value] of Object.entries(expected)) {
    expect(relativeL2Error(actual[output]!, value), `${name}: ${output}`).toBeLessThanOrEqual(2e-2);
  }
}

describe('cuda linear layers on dequantize + cuBLAS (simulated device)', () => {
  let compiled: Compiled;
  beforeAll(async () => {
    compiled = await compiledFor(syntheticPlan(QUANTIZED.flatMap(kernelCaseOf)));
  }, 120_000);

  it.each(QUANTIZED)('$name: the TypeScript op\'s y, u, v, dx, dA, dB, on the path its T selects', async (c) => {
    const { ops, device } = opsOn(compiled, { path: 'auto', minTokens: MIN_TOKENS });
    const actual = await runLinearCase(ops, c);
    expectMatches(actual, await runLinearCase(TYPESCRIPT_OPS, c), c.name);
    const onGemm = c.rows >= MIN_TOKENS;
    expect([ops.stats.gemmForward, ops.stats.gemmBackward]).toEqual(onGemm ? [1, 1] : [0, 0]);
    expect([ops.stats.compiledForward, ops.stats.compiledBackward]).toEqual([1, 1]);
    const launched = device.launched.join(' ');
    if (onGemm) {
      // Ŵ dequantized for each direction, then only GEMMs: no fused forward or backward_data kernel.
      expect(device.launched.filter((s) => s.startsWith('dequantize_'))).toHaveLength(2);
      // y = x·Ŵ and dx = dy·Ŵᵀ; with an adapter also y += σ·v·B, dx += c·du·U, dv = σ·dy·Bᵀ and dB = σ·vᵀ·dy.
      expect(device.launched.filter((s) => s === 'gemm')).toHaveLength(c.rank === 0 ? 2 : 6);
      expect(launched).not.toMatch(/(^| )(forward|decode|backward_data)_k\S*__(forward|decode|backwardData)/);
      if (c.rank > 0) {
        expect(launched).toMatch(/__adapterActivations/);
        // adapter_grad computes du and dA only: dv and dB were cuBLAS's.
        expect(launched).toMatch(/__adapterInputGrads/);
        expect(launched).not.toMatch(/__adapterOutputGrads/);
      }
    } else {
      expect(launched).not.toMatch(/dequantize_|gemm/);
    }
    expect(ops.launches()).toBe(device.launched.length + device.modelOpLaunches.length);
    // And forced onto the GEMM path at its T (below the threshold too): the same values.
    const forced = opsOn(compiled, { path: 'gemm' });
    expectMatches(await runLinearCase(forced.ops, c), await runLinearCase(TYPESCRIPT_OPS, c), `${c.name}, QALC_CUDA_LINEAR=gemm`);
    expect([forced.ops.stats.gemmForward, forced.ops.stats.gemmBackward]).toEqual([1, 1]);
  });

  it('QALC_CUDA_LINEAR=gemm serves every T, fused none; a port without a GEMM keeps the fused kernels and says so', async () => {
    const decode = QUANTIZED.find((c) => c.rows === 1)!;
    const expected = await runLinearCase(TYPESCRIPT_OPS, decode);
    const forced = opsOn(compiled, { path: linearPathOf('gemm') });
    expectMatches(await runLinearCase(forced.ops, decode), expected, 'gemm at T = 1');
    expect(forced.ops.stats.gemmForward).toBe(1);
    expect(describeDeviceOps(forced.ops)).toMatch(/on dequantize \+ cuBLAS: 1 forward, 1 backward \(QALC_CUDA_LINEAR=gemm\); on the fused kernels: 0 forward, 0 backward/);
    const large = QUANTIZED.find((c) => c.rows === 70)!;
    const fused = opsOn(compiled, { path: linearPathOf('fused'), minTokens: MIN_TOKENS });
    expectMatches(await runLinearCase(fused.ops, large), await runLinearCase(TYPESCRIPT_OPS, large), 'fused at T = 70');
    expect(fused.ops.stats.gemmForward + fused.ops.stats.gemmBackward).toBe(0);
    const noGemm = opsOn(compiled, { path: 'gemm' }, false);
    expectMatches(await runLinearCase(noGemm.ops, large), await runLinearCase(TYPESCRIPT_OPS, large), 'without a GEMM');
    expect(noGemm.device.launched).not.toContain('gemm');
    expect(describeDeviceOps(noGemm.ops)).toMatch(/on dequantize \+ cuBLAS: 0 forward, 0 backward \(the port has no GEMM\); on the fused kernels: 1 forward, 1 backward/);
    expect(() => linearPathOf('cublas')).toThrow(/QALC_CUDA_LINEAR=cublas: expected fused, gemm or auto/);
    expect(linearPathOf(undefined)).toBe('auto');
  });

  it('fp16 activations: the GEMM operands in f16', async () => {
    const c = QUANTIZED.find((k) => k.rows === 70)!;
    const plan = syntheticPlan(kernelCaseOf(c));
    const fp16 = await compiledFor({ ...plan, targets: { cuda: { activation: 'fp16' } } });
    expect(fp16.linear.every((k) => k.kernel.endsWith('_f16'))).toBe(true);
    const device = new SimulatedModelOpDevice(fp16.linear, fp16.modelOps);
    const ops = deviceOps(device, fp16.kernels, TYPESCRIPT_OPS, 'f16', { path: 'gemm' });
    expectMatches(await runLinearCase(ops, c), await runLinearCase(TYPESCRIPT_OPS, c), 'fp16');
    expect(ops.stats.gemmForward).toBe(1);
  }, 60_000);
});
