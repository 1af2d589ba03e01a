// Dropout as an explicit mask instead of a random draw inside the layer, so the oracle and a
// kernel under test can be handed the very same mask. Inverted dropout, as torch.nn.Dropout:
// kept values are scaled by 1/(1−p) during training so the expectation matches inference,
// where dropout is the identity. The map is diagonal and linear, so its backward is the same
// map applied to the incoming gradient.

export interface DropoutMask {
  /** 1 = keep, 0 = drop; same shape as the tensor it applies to. */
  readonly keep: Uint8Array;
  /** The drop probability the mask was drawn with, 0 ≤ p < 1; sets the 1/(1−p) scale. */
  readonly p: number;
}

/** values ⊙ keep / (1 − p); the identity when mask is undefined. */
export function applyDropout(values: Float64Array, mask: DropoutMask | undefined): Float64Array {
  if (mask === undefined) return values;
  const { keep, p } = mask;
  if (keep.length !== values.length) throw new RangeError(`dropout mask has ${keep.length} entries, tensor ${values.length}`);
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout probability must be in [0, 1), got ${p}`);
  const scale = 1 / (1 - p);
  return values.map((value, i) => (keep[i] ? value * scale : 0));
}
