// Every kernel the WGSL backend emits, compiled by Dawn and run on this machine's WebGPU
// device (lavapipe on CPU-only machines) against the float64 oracle: the shared suite of
// test/ir/kernel-cases.ts instantiated for WebGPU, in f32 and, where the device offers
// shader-f16, in f16.
import { afterAll, describe, it } from 'vitest';
import { openWebGpu } from '../../../src/runtime/webgpu/device.ts';
import { defineKernelSuite, type MeasuredError } from '../../ir/kernel-cases.ts';
import { skipWebGpu, webGpuName } from '../../support/webgpu-driver.ts';
import { webGpuBackend } from './webgpu-backend.ts';

const handle = skipWebGpu ? undefined : await openWebGpu();
afterAll(() => handle?.destroy());
const backend = handle ? webGpuBackend(handle) : undefined;

function report(label: string) {
  return (errors: readonly MeasuredError[]) => {
    const worst = new Map<string, MeasuredError>();
    for (const e of errors) {
      const key = `${e.kernel.replace(/_(f32|f16)$/, '')} ${e.output}`;
      if (!worst.has(key) || worst.get(key)!.error < e.error) worst.set(key, e);
    }
    const lines = [...worst.entries()].map(([key, e]) => `  ${e.error.toExponential(2)}  ${key}`);
    console.log(`${label}: worst norm-wise relative error per kernel output (${errors.length} measured)\n${lines.join('\n')}`);
  };
}

// The suite is defined from the device's features, so without a device it is one skipped test.
if (!backend) it.skip(webGpuName('the WGSL kernel suite, f32 and f16'), () => {});
else {
  describe('wgsl f32', () => {
    defineKernelSuite(backend, { precision: 'f32', tolerance: 1e-5, report: report('wgsl f32') });
  });

  // f16 activations (x, y, dy, dx, u, v stored as f16, sums in f32): an f16 store alone costs up
  // to 2^-11 relative per element, so the tolerance is 4e-3.
  describe.skipIf(!handle!.hasF16)('wgsl f16', () => {
    defineKernelSuite(backend, {
      precision: 'f16', tolerance: 4e-3, roles: ['forward', 'decode', 'backward_data', 'adapter_grad', 'dequantize'], report: report('wgsl f16'),
    });
  });
  if (!handle!.hasF16) console.log('wgsl f16: skipped, this WebGPU adapter does not offer shader-f16');
}
