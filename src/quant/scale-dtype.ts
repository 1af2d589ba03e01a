// The group scales as a checkpoint stores them: fp16 by default (GPTQ / AutoGPTQ pack
// `scales.half()`), bf16, or fp32. The codes are chosen with the exact scale, as AutoGPTQ's
// quantizer does, and the model then computes with the stored scale — so what is trained is
// what would be written, and the size table's bytes describe the scales that are used.
import { bf16Bits, bf16Value, f16Bits, f16Value } from '../runtime/cuda/host-data.ts';
import type { QuantizedWeight } from './quantized-weight.ts';

export type ScaleDtype = 'fp16' | 'bf16' | 'fp32';

/** f16Value of every fp16 bit pattern: a lookup instead of its power of two (a 7B shape rounds 200 M scales). */
let f16Values: Float64Array | undefined;
const f16Round = (value: number): number => (f16Values ??= Float64Array.from({ length: 65536 }, (_, bits) => f16Value(bits)))[f16Bits(value)]!;

const ROUND: Readonly<Record<ScaleDtype, (value: number) => number>> = {
  fp16: f16Round,
  bf16: (value) => bf16Value(bf16Bits(value)),
  fp32: Math.fround,
};

/** A scale that the dtype cannot hold (0 after rounding, or infinite): the layer cannot be stored so. */
export class ScaleRangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScaleRangeError';
  }
}

/**
 * `scales` rounded to `dtype` into `into` (which may be `scales` itself): true where any value
 * changed. `outFeatures` places a group in the error; `name` names the layer. Shared by
 * withStoredScales and the cuda backend's device quantization, which rounds the float32 scales
 * its kernel wrote (f16Bits and bf16Bits round through float32 first, so a float32 scale rounds
 * to the same stored value as the float64 one it came from).
 */
export function roundScales(scales: ArrayLike<number>, into: { [index: number]: number }, dtype: ScaleDtype, name: string, outFeatures: number): boolean {
  const round = ROUND[dtype];
  let changed = false;
  for (let g = 0; g < scales.length; g++) {
    const exact = scales[g]!;
    const s = (into[g] = round(exact));
    if (s !== exact) changed = true;
    if (s > 0 && Number.isFinite(s)) continue;
    const group = Math.floor(g / outFeatures), column = g % outFeatures;
    throw new ScaleRangeError(`${name}: the scale ${exact.toExponential(3)} of group ${group}, column ${column} is ${s} in ${dtype}` +
      `: its weights are too ${s === 0 ? 'small' : 'large'} for ${dtype} scales; set \`scale = fp32\``);
  }
  return changed;
}

/**
 * The weight with every scale rounded to `dtype`; `name` names the layer in the error. A weight
 * whose scales are in `dtype` already is returned as it is (no second copy of its scales); one
 * that says so (storedScaleDtype: quantized on a device) is not even read.
 */
export function withStoredScales(weight: QuantizedWeight, dtype: ScaleDtype, name: string): QuantizedWeight {
  if (weight.storedScaleDtype === dtype) return weight;
  const scales = new Float64Array(weight.scales.length);
  return roundScales(weight.scales, scales, dtype, name, weight.outFeatures) ? { ...weight, scales } : weight;
}
