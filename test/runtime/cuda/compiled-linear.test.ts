// The shared compiled-linear suite on the cuda port, with the simulated device standing in for
// the GPU: packing, layouts, bf16 conversion, launches and copies back, not the kernels' code.
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cudaOps } from '../../../src/runtime/cuda/cuda-ops.ts';
import { TYPESCRIPT_OPS } from '../../../src/runtime/typescript/ops.ts';
import { describeCompiledLinear } from '../compiled-linear-suite.ts';
import { SimulatedDevice } from './simulated-device.ts';

describeCompiledLinear('cuda (simulated device)', false, async (plan) => {
  const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
  const kernels = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  const images = kernels.map((k) => ({ manifest: k, fatbin: new Uint8Array(), origin: 'compiled' as const }));
  return { ops: cudaOps(new SimulatedDevice(kernels), { kernels: images }, TYPESCRIPT_OPS), tolerance: 2e-2 };
});
