// Shared by the WebGPU backend tests.

/** ‖actual − expected‖₂ / ‖expected‖₂ (the absolute norm when expected is all zeros). */
export function normRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new RangeError(`lengths differ: ${actual.length} vs ${expected.length}`);
  let difference = 0, scale = 0;
  for (let i = 0; i < expected.length; i++) {
    difference += (actual[i] - expected[i]) ** 2;
    scale += expected[i] ** 2;
  }
  if (Number.isNaN(difference)) return Infinity;
  return scale === 0 ? Math.sqrt(difference) : Math.sqrt(difference / scale);
}
