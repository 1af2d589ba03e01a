// What the webgpu backend's ops hand the device from the host: float32 arrays only (the backend
// computes in float32, like the native CPU backend).
import type { Floats } from '../typescript/floats.ts';

export function f32(array: Floats, name: string): Float32Array {
  if (!(array instanceof Float32Array)) throw new TypeError(`the WebGPU backend computes in float32; ${name} is a Float64Array`);
  return array;
}
