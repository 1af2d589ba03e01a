// How far a result is from its reference, the one way every test measures it: relative to the
// reference's size, in the L2 norm (‖got − ref‖ / ‖ref‖, the usual measure for a kernel's
// output) or the max norm (the worst element over the largest, for results whose every entry
// matters, such as gradients). NaN anywhere gives Infinity, so it never passes a bound.
function check(got: ArrayLike<number>, ref: ArrayLike<number>): void {
  if (got.length !== ref.length) throw new RangeError(`length ${got.length} vs reference ${ref.length}`);
}

export function relativeL2Error(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  check(got, ref);
  let diff = 0, norm = 0;
  for (let i = 0; i < ref.length; i++) {
    diff += (got[i]! - ref[i]!) ** 2;
    norm += ref[i]! ** 2;
  }
  if (Number.isNaN(diff)) return Infinity;
  return norm === 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
}

/** The worst difference over the largest magnitude in `ref`. */
export function relativeMaxError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  check(got, ref);
  let worst = 0, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i]! - ref[i]!);
    if (Number.isNaN(d)) return Infinity;
    worst = Math.max(worst, d);
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return scale === 0 ? worst : worst / scale;
}
