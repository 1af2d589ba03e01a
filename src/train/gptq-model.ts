// `method = gptq` at load time: the whole model is quantized block by block with GPTQ
// (src/quant/gptq.ts) from calibration activations, true-sequentially, as AutoGPTQ does:
//
//   the calibration windows run through the model in float64; within each block the
//   projections are quantized in the order their inputs become known — q, k, v (on the
//   attention norm), then o (on the attention output computed with the quantized q, k, v),
//   then gate, up, then down — and the next block's inputs are this block's outputs computed
//   with its quantized weights. Layers the spec quantizes with RTN are quantized here too (so
//   later layers see them quantized) but left to the model to quantize itself; unquantized
//   layers run in float.
//
// The result is the GPTQ layers' codes, scales and zeros (Llama2cCheckpoint.quantized), which
// QaLoraModel then uses as the frozen base. One progress line per quantized layer says how much
// of RTN's output error GPTQ removed on the calibration data.
import { headDim } from '../model/architecture.ts';
import type { Llama2cCheckpoint } from '../model/llama2c-checkpoint.ts';
import type { Plan } from '../plan/plan.ts';
import { dequantize } from '../quant/dequantize.ts';
import { HessianAccumulator, HessianError, quantizeGptq } from '../quant/gptq.ts';
import type { Bits, QuantizedWeight } from '../quant/quantized-weight.ts';
import { quantizeRtn } from '../quant/rtn.ts';
import { attentionForward } from '../runtime/typescript/attention.ts';
import { embeddingForward } from '../runtime/typescript/embedding.ts';
import { rmsnormForward } from '../runtime/typescript/rmsnorm.ts';
import { ropeForward, ropeTables } from '../runtime/typescript/rope.ts';
import { swigluForward } from '../runtime/typescript/swiglu.ts';
import type { Batch } from './qalora-model.ts';
import type { ProjectionName } from './qalora-spec.ts';
import { UnsupportedPlanError } from './plan-to-spec.ts';

/** How one projection is quantized in the sequential pass. */
export type LayerQuantizer =
  | { readonly method: 'gptq'; readonly bits: Bits; readonly group: number; readonly symmetric: boolean; readonly damp: number }
  | { readonly method: 'rtn'; readonly bits: Bits; readonly group: number; readonly symmetric: boolean }
  | { readonly method: 'none' };

/** What the plan asks of the sequential pass: a quantizer per projection of each block. */
export interface GptqRequest {
  readonly layers: readonly Readonly<Record<ProjectionName, LayerQuantizer>>[];
  /** The calibration data (a path, relative to the spec) or undefined: the training data. */
  readonly calibration: string | undefined;
  readonly samples: number;
}

/** The plan's GPTQ layers, or null when it has none. */
export function gptqRequestOf(plan: Plan): GptqRequest | null {
  const gptqLayers = plan.layers.filter((l) => l.quant?.method === 'gptq');
  if (gptqLayers.length === 0) return null;
  const first = gptqLayers[0]!.quant!.gptq!;
  for (const layer of gptqLayers) {
    const g = layer.quant!.gptq!;
    if (g.actOrder) throw new UnsupportedPlanError(`${layer.name}: act_order = true is not supported (it permutes the groups)`);
    if (g.calibration !== first.calibration || g.samples !== first.samples) {
      throw new UnsupportedPlanError(`${layer.name}: calibration and samples must be the same for every GPTQ layer (the whole model is calibrated with one data set): ${gptqLayers[0]!.name} has ${first.calibration ?? 'the training data'}, ${first.samples} samples; ${layer.name} ${g.calibration ?? 'the training data'}, ${g.samples}`);
    }
  }
  // The sequential pass quantizes every layer at its own in-features; padding is not in it.
  const padded = plan.layers.find((l) => l.quant && l.quant.paddedInFeatures !== l.inFeatures);
  if (padded) throw new UnsupportedPlanError(`${padded.name}: pad = zero in a model quantized with method = gptq (GPTQ's pass does not pad yet); use a group that divides ${padded.inFeatures}`);
  const blocks = plan.model.architecture.layers;
  const layers = Array.from({ length: blocks }, () => ({}) as Record<ProjectionName, LayerQuantizer>);
  for (const layer of plan.layers) {
    if (layer.block === null) continue;
    const q = layer.quant;
    layers[layer.block]![layer.projection as ProjectionName] = q === null ? { method: 'none' }
      : q.method === 'gptq' ? { method: 'gptq', bits: q.bits, group: q.group, symmetric: q.symmetric, damp: q.gptq!.damp }
        : { method: 'rtn', bits: q.bits, group: q.group, symmetric: q.symmetric };
  }
  return { layers, calibration: first.calibration, samples: first.samples };
}

/** Y [rows, N] = X [rows, K] · W (K×N). */
function matmul(x: Float64Array, w: Float64Array, rows: number, K: number, N: number): Float64Array {
  const y = new Float64Array(rows * N);
  for (let t = 0; t < rows; t++) {
    const out = t * N;
    for (let i = 0; i < K; i++) {
      const xi = x[t * K + i]!;
      if (xi === 0) continue;
      const row = i * N;
      for (let o = 0; o < N; o++) y[out + o] += xi * w[row + o]!;
    }
  }
  return y;
}

/** [out, in] float32 → K×N float64. */
function inputMajor(data: Float32Array, outFeatures: number, inFeatures: number): Float64Array {
  const w = new Float64Array(inFeatures * outFeatures);
  for (let o = 0; o < outFeatures; o++) for (let i = 0; i < inFeatures; i++) w[i * outFeatures + o] = data[o * inFeatures + i]!;
  return w;
}

/** √(tr(ΔᵀHΔ) / tr(WᵀHW)): the output error on the calibration rows, relative to the output. */
function relativeOutputError(h: Float64Array, w: Float64Array, wHat: Float64Array, K: number, N: number): number {
  let error = 0;
  let signal = 0;
  const hd = new Float64Array(N);
  const hw = new Float64Array(N);
  for (let i = 0; i < K; i++) {
    hd.fill(0);
    hw.fill(0);
    for (let j = 0; j < K; j++) {
      const hij = h[i * K + j]!;
      if (hij === 0) continue;
      for (let o = 0; o < N; o++) {
        hd[o] += hij * (w[j * N + o]! - wHat[j * N + o]!);
        hw[o] += hij * w[j * N + o]!;
      }
    }
    for (let o = 0; o < N; o++) {
      error += (w[i * N + o]! - wHat[i * N + o]!) * hd[o]!;
      signal += w[i * N + o]! * hw[o]!;
    }
  }
  return Math.sqrt(error / signal);
}

export interface GptqPassResult {
  readonly quantized: ReadonlyMap<string, QuantizedWeight>;
  readonly calibrationTokens: number;
}

/**
 * Runs the sequential pass over `calibration` (its tokens; targets are not used) and returns
 * the GPTQ layers' quantized weights by qalc name (`layers.0.q`). `report` gets one line per
 * quantized layer.
 */
export function quantizeModelWithGptq(weights: Llama2cCheckpoint, request: GptqRequest, calibration: Batch, report: (line: string) => void): GptqPassResult {
  const arch = weights.arch;
  const { dim: C, hiddenDim: hidden } = arch;
  const { batchSize: S, seqLen: T } = calibration;
  const rows = S * T;
  const kvDim = headDim(arch) * arch.kvHeads;
  const rope = ropeTables(headDim(arch), T, arch.ropeTheta);
  const quantized = new Map<string, QuantizedWeight>();

  /** Quantizes the projections that read `input` [rows, K]; their effective K×N weights. */
  const quantizeOn = (l: number, names: readonly ProjectionName[], input: Float64Array, K: number): Record<string, Float64Array> => {
    const plans = names.map((p) => request.layers[l]![p]);
    let h: Float64Array | undefined;
    if (plans.some((p) => p.method === 'gptq')) {
      const acc = new HessianAccumulator(K);
      acc.add(input, rows);
      h = acc.hessian();
    }
    const out: Record<string, Float64Array> = {};
    names.forEach((p, i) => {
      const tensor = weights.layers[l]![p];
      const [N] = tensor.shape as [number, number];
      const w = inputMajor(tensor.data, N, K);
      const plan = plans[i]!;
      const name = `layers.${l}.${p}`;
      if (plan.method === 'none') { out[p] = w; return; }
      const options = { bits: plan.bits, groupSize: plan.group, symmetric: plan.symmetric };
      const rtn = dequantize(quantizeRtn(w, K, N, options));
      if (plan.method === 'rtn') { out[p] = rtn; return; }
      let weight: QuantizedWeight;
      try {
        weight = quantizeGptq(w, K, N, h!, { ...options, damp: plan.damp });
      } catch (e) {
        if (e instanceof HessianError) throw new HessianError(`GPTQ of ${name}: ${e.message} with damp = ${plan.damp}; raise damp, or calibrate on more varied data`);
        throw e;
      }
      quantized.set(name, weight);
      out[p] = dequantize(weight);
      const gptqError = relativeOutputError(h!, w, out[p], K, N);
      const rtnError = relativeOutputError(h!, w, rtn, K, N);
      report(`gptq ${name}: ${plan.bits}-bit, group ${plan.group}, relative output error ${gptqError.toExponential(3)} (RTN ${rtnError.toExponential(3)}, ${((1 - gptqError / rtnError) * 100).toFixed(1)}% less)`);
    });
    return out;
  };

  let x: Float64Array = new Float64Array(rows * C);
  embeddingForward(x, calibration.tokens, weights.tokenEmbedding.data, rows, C);
  const rstd = new Float64Array(rows);
  // Attention holds [S', heads, T, T] probabilities: a few sequences at a time.
  const chunk = Math.max(1, Math.floor((1 << 22) / (arch.heads * T * T)));
  for (let l = 0; l < arch.layers; l++) {
    const w = weights.layers[l]!;
    const norm = new Float64Array(rows * C);
    rmsnormForward(norm, rstd, x, w.rmsAtt.data, rows, C, arch.rmsNormEps);
    const qkv = quantizeOn(l, ['q', 'k', 'v'], norm, C);
    const q = matmul(norm, qkv.q!, rows, C, C);
    const k = matmul(norm, qkv.k!, rows, C, kvDim);
    const v = matmul(norm, qkv.v!, rows, C, kvDim);
    ropeForward(q, rope, S, T, C);
    ropeForward(k, rope, S, T, kvDim);
    const attention = new Float64Array(rows * C);
    for (let first = 0; first < S; first += chunk) {
      const count = Math.min(chunk, S - first);
      const part = (a: Float64Array, width: number) => a.subarray(first * T * width, (first + count) * T * width);
      const probs = new Float64Array(count * arch.heads * T * T);
      attentionForward(part(attention, C), probs, part(q, C), part(k, kvDim), part(v, kvDim), { batch: count, seqLen: T, heads: arch.heads, kvHeads: arch.kvHeads, headSize: headDim(arch) });
    }
    const o = quantizeOn(l, ['o'], attention, C);
    const afterAttention = matmul(attention, o.o!, rows, C, C);
    for (let i = 0; i < afterAttention.length; i++) afterAttention[i] += x[i]!;
    const normFfn = new Float64Array(rows * C);
    rmsnormForward(normFfn, rstd, afterAttention, w.rmsFfn.data, rows, C, arch.rmsNormEps);
    const gateUp = quantizeOn(l, ['gate', 'up'], normFfn, C);
    const activated = new Float64Array(rows * hidden);
    swigluForward(activated, matmul(normFfn, gateUp.gate!, rows, C, hidden), matmul(normFfn, gateUp.up!, rows, C, hidden), rows * hidden);
    const down = quantizeOn(l, ['down'], activated, hidden);
    x = matmul(activated, down.down!, rows, hidden, C);
    for (let i = 0; i < x.length; i++) x[i] += afterAttention[i]!;
  }
  return { quantized, calibrationTokens: rows };
}
