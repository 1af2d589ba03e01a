// The webgpu backend: the training ops as WGSL kernels on the first WebGPU adapter Dawn finds
// (a GPU's Vulkan driver, or Mesa lavapipe on a machine without one). Given the spec's plan, its
// quantized linear layers run on the spec's compiled WGSL kernels; every other op (and a layer
// no compiled kernel fits) on the runtime's op kernels.
import type { Plan } from '../../plan/plan.ts';
import type { Backend } from '../backend.ts';
import { compiledWgslKernels } from './compiled-kernels.ts';
import { describeCompiledLinearStats } from '../compiled-linear.ts';
import { WEBGPU_WORDING } from './webgpu-port.ts';
import { openWebGpu } from './device.ts';
import { webGpuOps, type WebGpuOps } from './webgpu-ops.ts';

export interface WebGpuBackend extends Backend {
  readonly name: 'webgpu';
  readonly ops: WebGpuOps;
  /** The adapter, for the user: e.g. `llvmpipe (LLVM 19.1.7, 256 bits), lavapipe`. */
  readonly description: string;
  /** The line to show before a run: the adapter, and what runs the linear layers. */
  readonly notice: string;
  /** The line to show after it: how many linear calls ran on the compiled kernels ('' without a plan). */
  report(): string;
}

/** Throws with what to install when Dawn finds no adapter (see openWebGpu). */
export async function webGpuBackend(plan?: Plan): Promise<WebGpuBackend> {
  const gpu = await openWebGpu();
  const { device, description, vendor, architecture } = gpu.adapterInfo;
  const name = [description || device || 'unnamed adapter', vendor, architecture].filter((part) => part !== '').join(', ');
  const compiled = plan === undefined ? undefined : await compiledWgslKernels(plan);
  const ops = webGpuOps(gpu.device, compiled?.kernels);
  const linear = compiled === undefined ? 'every op on the op kernels' : `${compiled.summary}, every other op on the op kernels`;
  return {
    name: 'webgpu',
    ops,
    description: name,
    notice: `webgpu backend: ${name}; ${linear}`,
    report: () => (ops.linearStats === undefined ? '' : describeCompiledLinearStats(ops.linearStats, WEBGPU_WORDING)),
    close: () => gpu.destroy(),
  };
}
