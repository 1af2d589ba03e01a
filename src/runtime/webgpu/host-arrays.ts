// What the webgpu backend's linear ops hand the device from the host: float32 arrays only (the
// backend computes in float32, like the native CPU backend), and the dropout keep-scales.
import type { Floats } from '../../train/ops/floats.ts';

export function f32(array: Floats, name: string): Float32Array {
  if (!(array instanceof Float32Array)) throw new TypeError(`the WebGPU backend computes in float32; ${name} is a Float64Array`);
  return array;
}

/** Per pooled entry: 1/(1−p) kept, 0 dropped, 1 without a mask (src/train/ops/qalora-linear.ts's dropScale). */
export function keepScales(mask: Uint8Array | undefined, length: number, p: number): Float32Array {
  if (mask === undefined) return new Float32Array(length).fill(1);
  const kept = 1 / (1 - p);
  return Float32Array.from({ length }, (_, i) => (mask[i] ? kept : 0));
}
