// The webgpu backend: the training ops as WGSL kernels on the first WebGPU adapter Dawn finds
// (a GPU's Vulkan driver, or Mesa lavapipe on a machine without one).
import type { TrainingOps } from '../../train/ops/training-ops.ts';
import { openWebGpu } from './device.ts';
import { webGpuOps } from './webgpu-ops.ts';

export interface WebGpuBackend {
  readonly ops: TrainingOps;
  /** The adapter, for the user: e.g. `llvmpipe (LLVM 19.1.7, 256 bits), lavapipe`. */
  readonly description: string;
  close(): void;
}

/** Throws with what to install when Dawn finds no adapter (see openWebGpu). */
export async function webGpuBackend(): Promise<WebGpuBackend> {
  const gpu = await openWebGpu();
  const { device, description, vendor, architecture } = gpu.adapterInfo;
  const name = [description || device || 'unnamed adapter', vendor, architecture].filter((part) => part !== '').join(', ');
  return { ops: webGpuOps(gpu.device), description: name, close: () => gpu.destroy() };
}
