// The frozen base of one quantized projection, as QaLoraModel trains on it: RTN along the input
// dimension of the checkpoint's [out, in] weight, in-features padded with zero inputs to a
// multiple of the group when pad = zero, scales rounded to the spec's scale dtype. Shared by the
// model (from a checkpoint's floats) and random weights (from rows drawn on the fly, so a 7B
// shape never holds its floats): both give the same codes for the same weight.
import { quantizeRtnByRows } from '../quant/rtn.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import { withStoredScales } from '../quant/scale-dtype.ts';
import type { RandomProjectionQuantizer } from '../model/random-weights.ts';
import type { ProjectionSpec, QaLoraSpec } from './qalora-spec.ts';

/** The in-features the base is built with: the layer's, or pad = zero's next multiple of the group. */
export function paddedInFeatures(inFeatures: number, spec: ProjectionSpec): number {
  const pads = spec.pad === true && spec.bits !== null && Number.isInteger(spec.group) && spec.group >= 1;
  return pads ? Math.ceil(inFeatures / spec.group) * spec.group : inFeatures;
}

/**
 * RTN of the [outFeatures, inFeatures] weight whose row o `row(o, into)` writes (in order,
 * o = 0, 1, …) into the first inFeatures entries of `into`. `spec.bits` must not be null.
 */
export function quantizeProjection(name: string, outFeatures: number, inFeatures: number, spec: ProjectionSpec, row: (o: number, into: Float64Array) => void): QuantizedWeight {
  if (spec.bits === null) throw new Error(`${name} is not quantized (bits = null)`);
  const quantized = quantizeRtnByRows(paddedInFeatures(inFeatures, spec), outFeatures, { bits: spec.bits, groupSize: spec.group, symmetric: spec.symmetric ?? false }, row);
  return spec.scaleDtype ? withStoredScales(quantized, spec.scaleDtype, name) : quantized;
}

/**
 * For random weights (randomWeights' `quantize`): every projection the spec quantizes is
 * quantized as its rows are drawn; a projection it leaves in float (bits = null) is kept.
 */
export function quantizeAsDrawn(spec: QaLoraSpec): RandomProjectionQuantizer {
  return (l, p, outFeatures, inFeatures, rows) => {
    const projection = spec[l]![p];
    return projection.bits === null ? undefined : quantizeProjection(`layers.${l}.${p}`, outFeatures, inFeatures, projection, rows);
  };
}
