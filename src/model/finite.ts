// Weights must be finite numbers: one NaN in a checkpoint turns every loss and every logit into
// NaN, far from where it came from. Readers check each tensor and name the first bad value.

/** Index of the first NaN or ±Infinity, or -1 when every value is finite. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

/** [row, column] of a flat index into a row-major tensor of `shape`. */
export function indexIn(shape: readonly number[], flat: number): number[] {
  const index: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    index.unshift(flat % shape[d]!);
    flat = Math.floor(flat / shape[d]!);
  }
  return index;
}
