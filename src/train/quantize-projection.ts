// The frozen base of one quantized projection, as QaLoraModel trains on it: RTN along the input
// dimension of the checkpoint's [out, in] weight, in-features padded with zero inputs to a
// multiple of the group when pad = zero, scales rounded to the spec's scale dtype. Shared by the
// model (from a checkpoint's floats) and random weights (from rows drawn on the fly, so a 7B
// shape never holds its floats): both give the same codes for the same weight. A device backend's
// frozen quantizer (the ops' frozenQuantizer: the cuda backend's quantize kernels) gives them too.
import { quantizeRtnByRows } from '../quant/rtn.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import { withStoredScales } from '../quant/scale-dtype.ts';
import { drawRandomMatrix, RANDOM_TENSOR_NAMES, type RandomProjectionQuantizer } from '../model/random-weights.ts';
import type { FrozenQuantization, FrozenQuantizer } from '../runtime/ops.ts';
import type { WorkerDraws } from './random-weights-parallel.ts';
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

/**
 * A projection's spec as a frozen quantizer takes it, or undefined where the host quantizes it:
 * kept in float (bits = null), padded (pad = zero: no device backend takes padded layers yet),
 * or with exact float64 scales (no scale dtype), which a device does not hold.
 */
export function frozenQuantizationOf(spec: ProjectionSpec, inFeatures: number): FrozenQuantization | undefined {
  if (spec.bits === null || spec.scaleDtype === undefined || paddedInFeatures(inFeatures, spec) !== inFeatures) return undefined;
  return { bits: spec.bits, group: spec.group, symmetric: spec.symmetric ?? false, scaleDtype: spec.scaleDtype };
}

/** Where the setup of random weights on a device spent its time, in milliseconds. */
export interface DrawnOnDeviceTimes {
  /** Drawing (on this thread), or waiting for the workers' draws. */
  draw: number;
  /** Uploading and quantizing on the device. */
  quantize: number;
}

/**
 * For random weights on a device that quantizes (randomWeights' `quantize`): every projection the
 * spec quantizes is drawn whole, as a checkpoint would store it — by `draws` (the workers), or
 * here into one array reused for every projection — and handed to `quantizer`; the floats of one
 * projection at a time (a few, with workers) are all the host holds. `times` adds up where the
 * setup went.
 */
export function quantizeDrawnOnDevice(spec: QaLoraSpec, seed: number, quantizer: FrozenQuantizer, draws?: WorkerDraws, times: DrawnOnDeviceTimes = { draw: 0, quantize: 0 }): RandomProjectionQuantizer {
  let scratch = new Float32Array(0);
  return (l, p, outFeatures, inFeatures) => {
    const projection = spec[l]![p];
    if (projection.bits === null) return undefined;
    const started = performance.now();
    let floats: Float32Array;
    if (draws !== undefined) floats = draws.draw(l, p)!;
    else {
      if (scratch.length < outFeatures * inFeatures) scratch = new Float32Array(outFeatures * inFeatures);
      floats = drawRandomMatrix(seed, `layers.${l}.${RANDOM_TENSOR_NAMES[p]}`, outFeatures, inFeatures, scratch);
    }
    const drawn = performance.now();
    const name = `layers.${l}.${p}`;
    const quantization = frozenQuantizationOf(projection, inFeatures);
    const weight = quantization === undefined
      ? quantizeProjection(name, outFeatures, inFeatures, projection, (o, into) => into.set(floats.subarray(o * inFeatures, (o + 1) * inFeatures)))
      : quantizer.quantize(name, floats, outFeatures, inFeatures, quantization);
    times.draw += drawn - started;
    times.quantize += performance.now() - drawn;
    return weight;
  };
}
