// Folding a trained QA-LoRA adapter into the zero points, so the merged model is a plain
// group-quantized layer with the same q and s.
//
// With u[t,k] = c · Σ_{i∈k} x[t,i] (c = 1/g for mean pooling, 1 for sum pooling), the adapter
// adds to y[t,o]
//     σ · Σ_k u[t,k] (A·B)[k,o] = Σ_i x[t,i] · c·σ·(A·B)[k(i),o],
// i.e. the same ΔW = c·σ·(A·B)[k,o] for every input row of group k. Since
// s·(q − z') = s·(q − z) + s·(z − z'), choosing
//     z'[k,o] = z[k,o] − c·σ·(A·B)[k,o] / s[k,o]
// adds exactly ΔW: for mean pooling z' = z − σ·(A·B)/(g·s) (QALORA.md), for sum pooling
// z' = z − σ·(A·B)/s (no 1/g: the sum already weights each input by 1). Dropout plays no part:
// merging is for inference, where dropout is off.
import type { QaLoraAdapter } from '../reference/adapter.ts';
import { poolingFactor } from '../reference/adapter.ts';
import { storableZeros, type ZeroFormat } from './gptq-pack.ts';
import type { QuantizedWeight } from './quantized-weight.ts';
import { roundHalfEven } from './round-half-even.ts';

/** The same quantized weight with the adapter folded into (now fractional) float zeros. */
export function mergeAdapterIntoZeros(weight: QuantizedWeight, adapter: QaLoraAdapter): QuantizedWeight {
  const { inFeatures, outFeatures, groupSize, scales, zeros } = weight;
  const { rank, a, b, scaling, pooling } = adapter;
  const groups = inFeatures / groupSize;
  if (adapter.groupSize !== groupSize) {
    throw new RangeError(`adapter group size ${adapter.groupSize} differs from the quantization group size ${groupSize}`);
  }
  if (a.length !== groups * rank || b.length !== rank * outFeatures) {
    throw new RangeError(`adapter shapes A ${a.length}, B ${b.length} do not match L=${groups}, r=${rank}, N=${outFeatures}`);
  }
  // B = 0 (an adapter at initialisation: a run of no steps, random weights) adds nothing: the
  // zeros as they are, without the L·N·r products (13 G of them at the 7B shape).
  if (b.every((value) => value === 0)) return { ...weight, zeros: Float64Array.from(zeros) };
  const perGroup = scaling * poolingFactor(pooling, groupSize);
  const merged = new Float64Array(zeros.length);
  for (let k = 0; k < groups; k++) {
    for (let o = 0; o < outFeatures; o++) {
      let ab = 0;
      for (let j = 0; j < rank; j++) ab += a[k * rank + j] * b[j * outFeatures + o];
      const g = k * outFeatures + o;
      merged[g] = zeros[g] - (perGroup * ab) / scales[g];
    }
  }
  return { ...weight, zeros: merged };
}

export interface GptqZeroRounding {
  /** The weight with integer zeros in [1, 2^b] (v1) or [0, 2^b − 1] (v2), ready for packQzeros. */
  readonly weight: QuantizedWeight;
  /**
   * max |Ŵ_rounded − Ŵ_float| over all weights: s·|z' − round(z')| per group, at most s/2 unless
   * clamping moved a zero further. Every weight of a group shifts by the same amount, so the
   * error is correlated across the group and does not average out in x·Ŵ.
   */
  readonly maxAbsWeightError: number;
  /** Groups whose rounded zero fell outside [1, 2^b] and were clamped. */
  readonly clampedGroups: number;
}

/**
 * Rounds fractional (merged) zeros to what a GPTQ checkpoint can store: integers in [1, 2^b]
 * (v1, stored as z − 1 in b bits) or [0, 2^b − 1] (v2). Lossy; the loss is reported, not hidden.
 */
export function roundZerosForGptq(weight: QuantizedWeight, format: ZeroFormat = 'gptq'): GptqZeroRounding {
  const { scales, zeros, bits } = weight;
  const { lowest, highest } = storableZeros(bits, format);
  const rounded = new Float64Array(zeros.length);
  let maxAbsWeightError = 0;
  let clampedGroups = 0;
  for (let g = 0; g < zeros.length; g++) {
    const nearest = roundHalfEven(zeros[g]);
    const stored = Math.min(Math.max(nearest, lowest), highest);
    if (stored !== nearest) clampedGroups++;
    rounded[g] = stored;
    maxAbsWeightError = Math.max(maxAbsWeightError, Math.abs(scales[g] * (zeros[g] - stored)));
  }
  return { weight: { ...weight, zeros: rounded }, maxAbsWeightError, clampedGroups };
}
