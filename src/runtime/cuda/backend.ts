// The cuda backend: the quantized linear layers on the GPU, through the spec's compiled kernels;
// the rest on the CPU (the native ops, or the TypeScript ones when the addon is not built) for
// now. Fails with a reason a user can act on: no GPU, an old GPU, no fatbins and no nvcc.
import { join } from 'node:path';
import type { Plan } from '../../plan/plan.ts';
import type { Backend } from '../backend.ts';
import { defaultCompileDir } from '../compiled-kernels.ts';
import { cpuBackend } from '../cpu/backend.ts';
import { cudaDriver, type CudaDevice } from './cuda.ts';
import { cudaOps, describeStats, type CudaOps } from './cuda-ops.ts';
import { archFor, loadCudaKernels } from './kernels.ts';

export interface CudaBackend extends Backend {
  readonly name: 'cuda';
  readonly ops: CudaOps;
  readonly device: CudaDevice;
}

/** Where `qalc compile` writes a spec's CUDA kernels and fatbins unless told otherwise. */
export function defaultKernelDir(plan: Plan): string {
  return join(defaultCompileDir(plan), 'cuda');
}

export async function cudaBackend(plan: Plan, options: { readonly kernelDir?: string } = {}): Promise<CudaBackend> {
  const driver = cudaDriver();
  const { device } = driver;
  const arch = archFor(device.computeCapability);
  const kernels = await loadCudaKernels(plan, { dir: options.kernelDir ?? defaultKernelDir(plan), arch });
  const cpu = cpuBackend();
  const ops = cudaOps(driver, kernels, cpu.ops);
  const notice = [
    ...(cpu.notice ? [cpu.notice] : []),
    `cuda backend: ${device.name} (compute ${device.computeCapability.join('.')}), ${kernels.summary}; ` +
    `the quantized linear layers on the GPU, the rest on the CPU (${cpu.ops.name}) for now`,
  ].join('\n');
  // The driver's buffers and modules live as long as the process: close() has nothing to free yet.
  return { name: 'cuda', ops, device, notice, report: () => describeStats(ops.stats), close: () => {} };
}
