// The shared compiled-linear suite on the webgpu port: the spec's f32 WGSL kernels on Dawn.
import { afterAll } from 'vitest';
import { compiledWgslKernels } from '../../../src/runtime/webgpu/compiled-kernels.ts';
import { openWebGpu, type WebGpuHandle } from '../../../src/runtime/webgpu/device.ts';
import { webGpuOps } from '../../../src/runtime/webgpu/webgpu-ops.ts';
import { skipWebGpu, webGpuName } from '../../support/webgpu-driver.ts';
import { describeCompiledLinear } from '../compiled-linear-suite.ts';

let gpu: WebGpuHandle | undefined;
afterAll(() => gpu?.destroy());

describeCompiledLinear(webGpuName('webgpu'), skipWebGpu, async (plan) => {
  gpu = await openWebGpu();
  const ops = webGpuOps(gpu.device, (await compiledWgslKernels(plan)).kernels);
  return { ops: Object.assign(ops, { stats: ops.linearStats! }), tolerance: 1e-5 };
});
