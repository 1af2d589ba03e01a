// The generated typed bindings drive real kernels: the forward and dequantize kernels of
// stories260K's down projection (K = 172, group 43), through generated/stories260k/kernels.mts
// alone, on the WebGPU device, against the float64 oracle.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { wgslDequantizeKp172N64B4G43F32, wgslForwardK172N64B4G43QaloraR4MeanF32 } from '../../../generated/stories260k/kernels.mts';
import { dequantize } from '../../../src/quant/dequantize.ts';
import { packQweight } from '../../../src/quant/gptq-pack.ts';
import { quantizeRtn } from '../../../src/quant/rtn.ts';
import { qaloraForward } from '../../../src/reference/qalora-layer.ts';
import { createRng, randomNormalMatrix } from '../../../src/reference/random.ts';
import { openWebGpu, type WebGpuHandle } from '../../../src/runtime/webgpu/device.ts';
import { runWgslKernel } from '../../../src/runtime/webgpu/run-kernel.ts';
import { relativeL2Error } from '../../support/relative-error.ts';
import { skipWebGpu, webGpuName } from '../../support/webgpu-driver.ts';

let gpu: WebGpuHandle;
beforeAll(async () => { gpu = await openWebGpu(); });
afterAll(() => gpu?.destroy());

const K = 172, N = 64, G = 43, L = 4, R = 4, T = 37, SCALE = 2;

it.skipIf(skipWebGpu)(webGpuName('runs the forward and dequantize kernels of the down projection through kernels.mts'), async () => {
  const rng = createRng(260);
  const weight = randomNormalMatrix(rng, K, N, 0.05);
  const quantized = quantizeRtn(weight, K, N, { bits: 4, groupSize: G });
  const a = randomNormalMatrix(rng, L, R, 0.5);
  const b = randomNormalMatrix(rng, R, N, 0.5);
  const x = Float32Array.from(randomNormalMatrix(rng, T, K, 1));
  const qweight = new Uint32Array(packQweight(quantized.q, K, N, 4).buffer);
  const scalesAndZeros = Float32Array.from([...quantized.scales, ...quantized.zeros]);
  const dequantizeSource = readFileSync(new URL(`../../../generated/stories260k/${wgslDequantizeKp172N64B4G43F32.file}`, import.meta.url), 'utf8');
  const dense = await runWgslKernel(gpu, wgslDequantizeKp172N64B4G43F32, dequantizeSource, { qweight, groupScalesAndZeros: scalesAndZeros }, {}, 0);
  const reference = dequantize({ ...quantized, scales: Float64Array.from(Float32Array.from(quantized.scales)), zeros: quantized.zeros });
  expect(relativeL2Error(dense.weight!, reference)).toBeLessThan(1e-6);

  const forwardSource = readFileSync(new URL(`../../../generated/stories260k/${wgslForwardK172N64B4G43QaloraR4MeanF32.file}`, import.meta.url), 'utf8');
  const out = await runWgslKernel(gpu, wgslForwardK172N64B4G43QaloraR4MeanF32, forwardSource, {
    input: x, qweight, groupScalesAndZeros: scalesAndZeros, adapterWeights: Float32Array.from([...a, ...b]),
  }, { tokens: T, adapterScale: SCALE }, T);
  const want = qaloraForward({
    inFeatures: K, outFeatures: N, weight: reference,
    adapter: { groupSize: G, rank: R, pooling: 'mean', scaling: SCALE, a: Float64Array.from(Float32Array.from(a)), b: Float64Array.from(Float32Array.from(b)) },
  }, Float64Array.from(x), T);
  expect(relativeL2Error(out.output!, want.y)).toBeLessThan(1e-5);
  expect(relativeL2Error(out.pooledInput!, want.u)).toBeLessThan(1e-5);
  expect(relativeL2Error(out.adapterActivation!, want.v)).toBeLessThan(1e-5);
});
