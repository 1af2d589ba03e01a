// Group-wise round-to-nearest (RTN) quantization: GPTQ's min-max quantizer with no Hessian.
// Asymmetric is QALORA.md's formula; symmetric is what GPTQ / AutoGPTQ do with sym=True
// (quant.py, Quantizer.find_params), quirks included, so checkpoints made either way can be
// reproduced bit for bit. Rounding is half-to-even like torch.round (see round-half-even.ts).
import { roundHalfEven } from './round-half-even.ts';
import { checkGroupShape, maxCode, type Bits, type QuantizedWeight } from './quantized-weight.ts';

export interface RtnOptions {
  readonly bits: Bits;
  readonly groupSize: number;
  /** GPTQ's sym=True: the zero is fixed at 2^(b−1) and the range made symmetric around 0. */
  readonly symmetric?: boolean;
}

/** The scale and zero of one group of one column, from the group's min and max. */
export function groupScaleAndZero(groupMin: number, groupMax: number, bits: Bits, symmetric: boolean): { scale: number; zero: number } {
  const maxq = maxCode(bits);
  // The range always contains 0 so that 0 is exactly representable (padding, pruned weights).
  let xmin = Math.min(0, groupMin);
  let xmax = Math.max(0, groupMax);
  if (symmetric) {
    xmax = Math.max(Math.abs(xmin), xmax);
    // GPTQ only mirrors xmin when it is negative: an all-non-negative group keeps xmin = 0, so
    // its scale is xmax/maxq while the zero sits mid-range and the upper half of the range
    // clamps. That is a quirk of GPTQ, kept because checkpoints carry it.
    if (xmin < 0) xmin = -xmax;
  }
  // An all-zero group would give s = 0; GPTQ widens it to [−1, 1] (after the symmetric step).
  if (xmin === 0 && xmax === 0) {
    xmin = -1;
    xmax = 1;
  }
  const scale = (xmax - xmin) / maxq;
  // `+ 0` turns the −0 of −xmin = −0 into +0, so zeros compare and print as plain integers.
  const zero = symmetric ? (maxq + 1) / 2 : roundHalfEven(-xmin / scale) + 0;
  return { scale, zero };
}

/** The code of one weight: clamp(round(w/s) + z, 0, 2^b − 1). */
export function quantizeValue(w: number, scale: number, zero: number, bits: Bits): number {
  const code = roundHalfEven(w / scale) + zero;
  return Math.min(Math.max(code, 0), maxCode(bits));
}

/** Quantizes W (K×N, input-major, row-major) group-wise along the input dimension. */
export function quantizeRtn(weight: Float64Array, inFeatures: number, outFeatures: number, options: RtnOptions): QuantizedWeight {
  const { bits, groupSize } = options;
  const symmetric = options.symmetric ?? false;
  checkGroupShape(inFeatures, outFeatures, groupSize, bits);
  if (weight.length !== inFeatures * outFeatures) {
    throw new RangeError(`weight has ${weight.length} elements, expected ${inFeatures}×${outFeatures}`);
  }
  const groups = inFeatures / groupSize;
  const q = new Uint8Array(inFeatures * outFeatures);
  const scales = new Float64Array(groups * outFeatures);
  const zeros = new Float64Array(groups * outFeatures);
  for (let k = 0; k < groups; k++) {
    const firstRow = k * groupSize;
    for (let o = 0; o < outFeatures; o++) {
      let groupMin = Infinity;
      let groupMax = -Infinity;
      for (let i = firstRow; i < firstRow + groupSize; i++) {
        const w = weight[i * outFeatures + o];
        if (w < groupMin) groupMin = w;
        if (w > groupMax) groupMax = w;
      }
      const { scale, zero } = groupScaleAndZero(groupMin, groupMax, bits, symmetric);
      scales[k * outFeatures + o] = scale;
      zeros[k * outFeatures + o] = zero;
      for (let i = firstRow; i < firstRow + groupSize; i++) {
        q[i * outFeatures + o] = quantizeValue(weight[i * outFeatures + o], scale, zero, bits);
      }
    }
  }
  return { inFeatures, outFeatures, groupSize, bits, q, scales, zeros };
}

/**
 * quantizeRtn of Wᵀ for a W given output-major ([out, in], llama2.c's layout), one output row
 * at a time: `row(o, into)` writes row o's in-features into `into` (length inFeatures, zeroed
 * before each call, so entries it leaves are 0: pad = zero's rows). Gives what quantizeRtn
 * gives on the transposed (and padded) matrix, without a float copy of W: a group is then a
 * contiguous run of the row, and a caller can make each row on the fly (random weights).
 */
export function quantizeRtnByRows(inFeatures: number, outFeatures: number, options: RtnOptions, row: (o: number, into: Float64Array) => void): QuantizedWeight {
  const { bits, groupSize } = options;
  const symmetric = options.symmetric ?? false;
  checkGroupShape(inFeatures, outFeatures, groupSize, bits);
  const groups = inFeatures / groupSize;
  const q = new Uint8Array(inFeatures * outFeatures);
  const scales = new Float64Array(groups * outFeatures);
  const zeros = new Float64Array(groups * outFeatures);
  const values = new Float64Array(inFeatures);
  const maxq = maxCode(bits);
  // Codes of TILE rows at a time, then moved into q (input-major) a TILE-byte run per input:
  // one code per store at stride N would touch a cache line per weight.
  const tile = new Uint8Array(TILE * inFeatures);
  for (let o0 = 0; o0 < outFeatures; o0 += TILE) {
    const rows = Math.min(TILE, outFeatures - o0);
    for (let j = 0; j < rows; j++) {
      const o = o0 + j;
      values.fill(0);
      row(o, values);
      for (let k = 0; k < groups; k++) {
        const first = k * groupSize, end = first + groupSize;
        let groupMin = Infinity;
        let groupMax = -Infinity;
        for (let i = first; i < end; i++) {
          const w = values[i]!;
          if (w < groupMin) groupMin = w;
          if (w > groupMax) groupMax = w;
        }
        const { scale, zero } = groupScaleAndZero(groupMin, groupMax, bits, symmetric);
        scales[k * outFeatures + o] = scale;
        zeros[k * outFeatures + o] = zero;
        // quantizeValue inlined: this loop runs once per weight (6.5 G times for a 7B shape).
        for (let i = first; i < end; i++) {
          const x = values[i]! / scale;
          let code = Math.round(x);
          if (code - x === 0.5 && code % 2 !== 0) code -= 1; // roundHalfEven
          code += zero;
          tile[j * inFeatures + i] = code < 0 ? 0 : code > maxq ? maxq : code;
        }
      }
    }
    for (let i = 0; i < inFeatures; i++) {
      const at = i * outFeatures + o0;
      for (let j = 0; j < rows; j++) q[at + j] = tile[j * inFeatures + i]!;
    }
  }
  return { inFeatures, outFeatures, groupSize, bits, q, scales, zeros };
}

/** Output rows quantizeRtnByRows codes before moving them into place. */
const TILE = 64;
