// Which WGSL kernels a device can run: f16 where the adapter offers `shader-f16`, otherwise the
// f32 kernels `qalc compile` emits beside them — and a line saying so, never a silent switch.
import type { WebGpuHandle } from './device.ts';

export interface PrecisionChoice {
  readonly precision: 'f16' | 'f32';
  /** Empty when the spec's precision runs as asked. */
  readonly notice: string;
}

export function chooseWgslPrecision(gpu: Pick<WebGpuHandle, 'hasF16' | 'adapterInfo'>, wanted: 'f16' | 'f32'): PrecisionChoice {
  if (wanted === 'f32' || gpu.hasF16) return { precision: wanted, notice: '' };
  const adapter = gpu.adapterInfo.description || gpu.adapterInfo.device || 'this adapter';
  return { precision: 'f32', notice: `${adapter} does not offer shader-f16: running the f32 WGSL kernels instead of f16` };
}

/** A kernel name in the chosen precision: `…_f16` ↔ `…_f32`. */
export function kernelNameFor(name: string, precision: 'f16' | 'f32'): string {
  return name.replace(/_f(16|32)$/, `_${precision}`);
}
