// The WebGPU op table (its own op kernels, no compiled ones) against the TypeScript ops: the
// shared suite (../ops-suite.ts), 1e-5 relative error norm-wise, read back with syncToHost,
// since the WebGPU ops leave what they write on the device.
import { openWebGpu } from '../../../src/runtime/webgpu/device.ts';
import { webGpuOps } from '../../../src/runtime/webgpu/webgpu-ops.ts';
import type { Floats } from '../../../src/runtime/typescript/floats.ts';
import { relativeL2Error } from '../../support/relative-error.ts';
import { skipWebGpu, webGpuName } from '../../support/webgpu-driver.ts';
import { describeTrainingOps } from '../ops-suite.ts';

describeTrainingOps(webGpuName('webgpu'), skipWebGpu, async () => {
  const gpu = await openWebGpu();
  const ops = webGpuOps(gpu.device);
  return {
    ops,
    async variants(run) {
      const results = await run(ops);
      await ops.syncToHost(Object.values(results).filter((value): value is Floats => typeof value !== 'number'));
      return [results];
    },
    error: relativeL2Error,
    tolerance: 1e-5,
    close: () => gpu.destroy(),
  };
});
