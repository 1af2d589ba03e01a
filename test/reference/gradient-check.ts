// Central finite differences in float64 for the layer tests. The loss is ⟨y, R⟩ for a fixed
// random R, so ∂loss/∂y = R is the dy handed to the backward. The layer is linear in x and
// bilinear in (A, B), so central differences are exact up to rounding: h only trades
// cancellation error, and a wrong gradient shows up as O(1) relative error, not 1e-7.

/** ∂f/∂params[j] for every j, by (f(p + h·e_j) − f(p − h·e_j)) / 2h; params is restored. */
export function finiteDifferenceGradient(f: () => number, params: Float64Array, h = 1e-4): Float64Array {
  const gradient = new Float64Array(params.length);
  for (let j = 0; j < params.length; j++) {
    const saved = params[j];
    params[j] = saved + h;
    const plus = f();
    params[j] = saved - h;
    const minus = f();
    params[j] = saved;
    gradient[j] = (plus - minus) / (2 * h);
  }
  return gradient;
}

export function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

export function maxAbs(a: Float64Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

export function maxAbsDifference(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length) throw new RangeError(`length mismatch: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
