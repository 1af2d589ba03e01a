// The cuda TrainingOps on a simulated device (./simulated-device.ts): the quantized linear layers
// go through the stories260K kernels' bindings and launches and agree with the TypeScript ops to
// bf16 rounding; layers no kernel fits run on the fallback ops, and the stats say so.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { quantizeRtn } from '../../../src/quant/rtn.ts';
import { createRng } from '../../../src/reference/random.ts';
import { cudaOps, describeStats } from '../../../src/runtime/cuda/cuda-ops.ts';
import { parseManifest, type CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { TYPESCRIPT_OPS } from '../../../src/runtime/typescript/ops.ts';
import type { AdapterActivations, QaLoraLinear } from '../../../src/runtime/typescript/qalora-linear.ts';
import { SimulatedDevice } from './simulated-device.ts';
import { relativeMaxError } from '../../support/relative-error.ts';

const manifests = parseManifest(readFileSync('generated/stories260k/manifest.json', 'utf8'), 'generated/stories260k/manifest.json').kernels
  .filter((k): k is CudaManifestKernel => k.target === 'cuda');

function layer(K: number, N: number, group: number, seed: number, dense = false): QaLoraLinear {
  const rng = createRng(seed);
  const w = Float64Array.from({ length: K * N }, () => (rng.next() - 0.5) * 0.2);
  const L = K / group, rank = 4;
  const adapter = {
    groupSize: group, rank, pooling: 'mean' as const, scaling: 8 / rank, dropout: 0,
    a: Float32Array.from({ length: L * rank }, () => rng.next() - 0.5),
    b: Float32Array.from({ length: rank * N }, () => (rng.next() - 0.5) * 0.1),
    gradA: new Float32Array(L * rank), gradB: new Float32Array(rank * N),
  };
  const base = dense
    ? { kind: 'dense' as const, inFeatures: K, outFeatures: N, weight: Float32Array.from(w) }
    : { kind: 'quantized' as const, weight: quantizeRtn(w, K, N, { bits: 4, groupSize: group }) };
  return { base, adapter };
}

const clone = (l: QaLoraLinear): QaLoraLinear => ({
  base: l.base, adapter: l.adapter && { ...l.adapter, gradA: new Float32Array(l.adapter.gradA.length), gradB: new Float32Array(l.adapter.gradB.length) },
});

describe('cuda ops on a simulated device', () => {
  for (const [K, N, group, rows, symbol] of [
    [64, 64, 16, 5, 'decode_k64_n64_b4_g16_qalora_r4_mean_bf16__decodeT8'], // v9's subgroups: T = 5 in the 8-token tile
    [64, 172, 16, 70, 'forward_k64_n172_b4_g16_qalora_r4_mean_bf16__forwardTensorCore'],
    [172, 64, 43, 33, 'forward_k172_n64_b4_g43_qalora_r4_mean_bf16__forward'],
  ] as const) {
    it(`${K}×${N}, group ${group}, T = ${rows}: forward and backward agree with the TypeScript ops to bf16 rounding`, () => {
      const device = new SimulatedDevice(manifests);
      const ops = cudaOps(device, { kernels: manifests.map((manifest) => ({ manifest, fatbin: new Uint8Array(), origin: 'compiled' as const })) }, TYPESCRIPT_OPS);
      const gpuLayer = layer(K, N, group, K + N), cpuLayer = clone(gpuLayer);
      const rng = createRng(9);
      const x = Float32Array.from({ length: rows * K }, () => rng.next() - 0.5);
      const dy = Float32Array.from({ length: rows * N }, () => rng.next() - 0.5);
      const L = K / group;
      const saved = (): AdapterActivations => ({ u: new Float32Array(rows * L), v: new Float32Array(rows * 4), mask: undefined });
      const gpuSaved = saved(), cpuSaved = saved();
      const gpuY = new Float32Array(rows * N), cpuY = new Float32Array(rows * N);
      ops.qaloraLinearForward(gpuY, x, rows, gpuLayer, gpuSaved);
      TYPESCRIPT_OPS.qaloraLinearForward(cpuY, x, rows, cpuLayer, cpuSaved);
      expect(device.launched).toContain(symbol);
      // The tensor-core forward runs after its u/v prologue.
      if (symbol.endsWith('TensorCore')) expect(device.launched.indexOf(symbol.replace('forwardTensorCore', 'adapterActivations'))).toBe(device.launched.indexOf(symbol) - 1);
      expect(relativeMaxError(gpuY, cpuY)).toBeLessThan(2e-2);
      expect(relativeMaxError(gpuSaved.u, cpuSaved.u)).toBeLessThan(1e-2);
      expect(relativeMaxError(gpuSaved.v, cpuSaved.v)).toBeLessThan(2e-2);

      const gpuDx = new Float32Array(rows * K).fill(1), cpuDx = new Float32Array(rows * K).fill(1); // backward adds to dx
      ops.qaloraLinearBackward(gpuDx, dy, rows, gpuLayer, gpuSaved);
      TYPESCRIPT_OPS.qaloraLinearBackward(cpuDx, dy, rows, cpuLayer, cpuSaved);
      expect(relativeMaxError(gpuDx, cpuDx)).toBeLessThan(2e-2);
      expect(relativeMaxError(gpuLayer.adapter!.gradA, cpuLayer.adapter!.gradA)).toBeLessThan(3e-2);
      expect(relativeMaxError(gpuLayer.adapter!.gradB, cpuLayer.adapter!.gradB)).toBeLessThan(3e-2);
      expect(ops.stats).toMatchObject({ compiledForward: 1, compiledBackward: 1, fallbackForward: 0, fallbackBackward: 0 });
    });
  }

  it('a layer no kernel fits (dense, or a shape the spec does not have) runs on the fallback ops, and the stats say why', () => {
    const device = new SimulatedDevice(manifests);
    const ops = cudaOps(device, { kernels: manifests.map((manifest) => ({ manifest, fatbin: new Uint8Array(), origin: 'compiled' as const })) }, TYPESCRIPT_OPS);
    for (const l of [layer(64, 64, 16, 1, true), layer(32, 48, 16, 2)]) {
      const saved: AdapterActivations = { u: new Float32Array(2 * (l.adapter!.a.length / 4)), v: new Float32Array(8), mask: undefined };
      const K = l.base.kind === 'dense' ? l.base.inFeatures : l.base.weight.inFeatures, N = l.adapter!.b.length / 4;
      ops.qaloraLinearForward(new Float32Array(2 * N), new Float32Array(2 * K), 2, l, saved);
    }
    expect(device.launched).toEqual([]);
    expect(ops.stats.fallbackForward).toBe(2);
    expect(describeStats(ops.stats)).toMatch(/64×64 dense, adapter rank 4: not quantized.*32×48 4-bit, group 16, adapter rank 4: no forward kernel/);
  });
});
