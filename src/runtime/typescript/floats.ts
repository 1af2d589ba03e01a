// The element types the training ops run in. Float32Array is the runtime's type (what the
// CPU-native, WebGPU and CUDA backends are compared against); Float64Array runs the very same
// code for the finite-difference tests, where float32 rounding would drown the check.
//
// Conventions shared by every op in this folder (llm.c style):
// - shapes are passed explicitly and arrays are row-major: [B, T, C] is index (b·T + t)·C + c;
// - a forward writes (overwrites) its outputs and whatever it saves for the backward;
// - a backward ACCUMULATES (+=) into every gradient it produces, so the residual stream and
//   the gradients of parameters shared across calls add up; the caller zeroes them first;
// - sums are carried in JS numbers (float64) and rounded once when stored.

export type Floats = Float32Array | Float64Array;

export type FloatType = 'float32' | 'float64';

export function allocateFloats(type: FloatType, length: number): Floats {
  return type === 'float32' ? new Float32Array(length) : new Float64Array(length);
}

/** Throws unless `array` holds exactly `length` elements; shapes are programmer errors. */
export function checkLength(name: string, array: ArrayLike<number>, length: number): void {
  if (array.length !== length) throw new RangeError(`${name} has ${array.length} elements, expected ${length}`);
}
