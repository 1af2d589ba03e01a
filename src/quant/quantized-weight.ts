// The group-wise quantized form of one linear layer's weight, as QALORA.md defines it.
// W is input-major K×N (y = x·W); inputs i = k·g … k·g+g−1 form group k and share one scale
// and one zero per output column o. Every array is row-major.
import type { ScaleDtype } from './scale-dtype.ts';

export type Bits = 2 | 3 | 4 | 8;

export const SUPPORTED_BITS: readonly Bits[] = [2, 3, 4, 8];

export interface QuantizedWeight {
  readonly inFeatures: number; // K
  readonly outFeatures: number; // N
  readonly groupSize: number; // g, divides K
  readonly bits: Bits;
  /** q[i·N + o] ∈ [0, 2^b − 1], K×N. */
  readonly q: Uint8Array;
  /** s[k·N + o], L×N. */
  readonly scales: Float64Array;
  /**
   * z[k·N + o], L×N. Integers straight out of RTN; after a QA-LoRA merge they are fractional,
   * which is why they are floats here and not Uint8.
   */
  readonly zeros: Float64Array;
  /**
   * The scale dtype the scales are rounded to already, where the weight says so (quantized on a
   * device, whose arrays the host reads back only when asked): withStoredScales leaves it unread.
   */
  readonly storedScaleDtype?: ScaleDtype;
}

/** 2^b − 1, the largest code. */
export function maxCode(bits: Bits): number {
  return (1 << bits) - 1;
}

/** Throws on shapes no kernel could be asked for; these are programmer errors, not user input. */
export function checkGroupShape(inFeatures: number, outFeatures: number, groupSize: number, bits: number): void {
  if (!SUPPORTED_BITS.includes(bits as Bits)) {
    throw new RangeError(`bits must be one of ${SUPPORTED_BITS.join(', ')}, got ${bits}`);
  }
  for (const [name, value] of [['in_features', inFeatures], ['out_features', outFeatures], ['group size', groupSize]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  if (inFeatures % groupSize !== 0) {
    throw new RangeError(`group size ${groupSize} does not divide in_features ${inFeatures}`);
  }
}
