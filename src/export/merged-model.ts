// qalc's own model format: an INT-N model again after the merge. Every adapter is folded into
// its layer's zero points (src/quant/merge.ts), which are stored as floats, so the merge loses
// nothing; q is stored in GPTQ v1's packed layout. One safetensors file whose names and row
// order mean what they say — Hugging Face's names and Hugging Face's rotary order (q and k rows
// permuted for rotate-half RoPE, as transformers stores them; qalc turns them back into
// llama2.c's interleaved order on reading):
//
//   model.embed_tokens.weight                     F32 [vocab, dim]
//   model.layers.<i>.input_layernorm.weight       F32 [dim]   (and post_attention_layernorm)
//   model.layers.<i>.self_attn.q_proj.qweight     I32 [⌈K·b/32⌉, N]   packed codes, lowest input lowest
//   model.layers.<i>.self_attn.q_proj.scales      F32 [K/g, N]
//   model.layers.<i>.self_attn.q_proj.zeros       F32 [K/g, N]        fractional after the merge
//   (with pad = zero, K is the padded in-features: the layer's record says paddedInFeatures)
//   model.layers.<i>.mlp.down_proj.weight         F32 [N, K]          a projection left unquantized
//   model.norm.weight, lm_head.weight (untied models only)
//   qalc.tokenizer                                U8  [bytes]         the tokenizer file, verbatim
//
// Metadata: format, rotary ("hf"), the architecture, every layer's bits and group, the plan and
// the tokenizer's file name, as JSON. Files of the first version (qalc-merged-1) carried the
// same names over llama2.c's row order: they are still read, in that order.
import { firstNonFinite } from '../model/finite.ts';
import { dequantize } from '../quant/dequantize.ts';
import { packedWords, packQweight, unpackQweight } from '../quant/gptq-pack.ts';
import { mergeAdapterIntoZeros } from '../quant/merge.ts';
import type { Bits, QuantizedWeight } from '../quant/quantized-weight.ts';
import { ARCHITECTURE_FIELDS, LLAMA_ROPE_AND_NORM, oddHeadSize, validRopeAndNorm, type Architecture } from '../model/architecture.ts';
import type { LayerWeights, Llama2cCheckpoint, Tensor } from '../model/llama2c-checkpoint.ts';
import { hfRowOrder, inversePermutation, permuteToHf, reorderOutputColumns, rotaryHeads, unpermuteFromHf } from '../model/rope-permutation.ts';
import type { QaLoraModel, TrainableCheckpoint } from '../train/qalora-model.ts';
import { PROJECTIONS, type ProjectionName } from '../train/qalora-spec.ts';
import { HF_PROJECTION_NAMES } from '../plan/layer-shapes.ts';
import { readSafetensors, SafetensorsError, tensor, writeSafetensorsAtomic, type NamedTensor, type SafetensorsFile } from './safetensors.ts';

export const MERGED_FORMAT = 'qalc-merged-2';
/** llama2.c's rotary order under Hugging Face names: read, never written. */
const LEGACY_FORMAT = 'qalc-merged-1';
const TOKENIZER_TENSOR = 'qalc.tokenizer';

interface LayerQuantization {
  readonly bits: Bits | null;
  readonly group: number;
  /** pad = zero: the stored rows, in-features padded with zero inputs to a multiple of the group. */
  readonly paddedInFeatures?: number;
}

/** One projection after the merge, in qalc's own (llama2.c) row order. */
export type MergedProjection =
  | {
    readonly prefix: string; readonly kind: 'quantized'; readonly weight: QuantizedWeight;
    /** The layer's in-features: weight.inFeatures less pad = zero's padding rows, whose inputs are always 0. */
    readonly inFeatures: number;
  }
  | { readonly prefix: string; readonly kind: 'dense'; /** [out, in] */ readonly weight: Tensor };

export interface MergedBlock {
  readonly rmsAtt: Tensor;
  readonly rmsFfn: Tensor;
  readonly projections: Readonly<Record<ProjectionName, MergedProjection>>;
}

/** A merged INT-N model in memory: what every export format is written from. */
export interface MergedModel {
  readonly spec: string;
  readonly arch: Architecture;
  readonly tokenEmbedding: Tensor;
  readonly blocks: readonly MergedBlock[];
  readonly rmsFinal: Tensor;
  readonly classifier: Tensor;
  /** The tokenizer file's name and bytes, when the model carries it. */
  readonly tokenizer?: { readonly name: string; readonly bytes: Uint8Array };
  /** The plan it was merged under, as JSON. */
  readonly plan?: string;
}

export interface MergeExtras {
  readonly tokenizer?: { readonly name: string; readonly bytes: Uint8Array };
  readonly plan?: string;
  /** false: the quantized base as it was before training, adapters left out (default true). */
  readonly foldAdapters?: boolean;
}

/** Every projection of the model with its adapter folded into the zeros. */
export function mergeModel(model: QaLoraModel, weights: TrainableCheckpoint, spec: string, { foldAdapters = true, ...extras }: MergeExtras = {}): MergedModel {
  const blocks = model.blocks.map((block, l): MergedBlock => {
    const projections = {} as Record<ProjectionName, MergedProjection>;
    for (const p of PROJECTIONS) {
      const prefix = `model.layers.${l}.${HF_PROJECTION_NAMES[p]}`;
      const { base, adapter } = block[p].layer;
      if (base.kind === 'dense') {
        if (adapter && foldAdapters) throw new Error(`${prefix}: merging an adapter into an unquantized layer is not supported`);
        projections[p] = { prefix, kind: 'dense', weight: weights.layers[l]![p] };
        continue;
      }
      const weight = adapter && foldAdapters
        ? mergeAdapterIntoZeros(base.weight, { groupSize: adapter.groupSize, rank: adapter.rank, pooling: adapter.pooling, scaling: adapter.scaling, a: Float64Array.from(adapter.a), b: Float64Array.from(adapter.b) })
        : base.weight;
      projections[p] = { prefix, kind: 'quantized', weight, inFeatures: weights.layers[l]![p].shape[1]! };
    }
    const w = weights.layers[l]!;
    return { rmsAtt: w.rmsAtt, rmsFfn: w.rmsFfn, projections };
  });
  return { spec, arch: model.arch, tokenEmbedding: weights.tokenEmbedding, blocks, rmsFinal: weights.rmsFinal, classifier: weights.classifier, ...extras };
}

/** A projection in Hugging Face's row order, for files that use Hugging Face names. */
export function inHfOrder(arch: Architecture, p: ProjectionName, projection: MergedProjection): MergedProjection {
  const heads = rotaryHeads(arch, p);
  if (heads === undefined) return projection;
  if (projection.kind === 'dense') {
    const cols = projection.weight.shape[1]!;
    return { ...projection, weight: { ...projection.weight, data: permuteToHf(projection.weight.data, heads, cols) } };
  }
  return { ...projection, weight: reorderOutputColumns(projection.weight, hfRowOrder(projection.weight.outFeatures, heads)) };
}

/** Writes a merged model as qalc's format (see the top of this file). */
export function writeMergedModel(path: string, merged: MergedModel): void {
  const { arch } = merged;
  const tensors: NamedTensor[] = [{ name: 'model.embed_tokens.weight', shape: merged.tokenEmbedding.shape, data: merged.tokenEmbedding.data }];
  const quantization: Record<string, LayerQuantization> = {};
  merged.blocks.forEach((block, l) => {
    tensors.push({ name: `model.layers.${l}.input_layernorm.weight`, shape: block.rmsAtt.shape, data: block.rmsAtt.data });
    tensors.push({ name: `model.layers.${l}.post_attention_layernorm.weight`, shape: block.rmsFfn.shape, data: block.rmsFfn.data });
    for (const p of PROJECTIONS) {
      const projection = inHfOrder(arch, p, block.projections[p]);
      const { prefix } = projection;
      if (projection.kind === 'dense') {
        tensors.push({ name: `${prefix}.weight`, shape: projection.weight.shape, data: projection.weight.data });
        quantization[prefix] = { bits: null, group: projection.weight.shape[1]! };
        continue;
      }
      const { inFeatures: K, outFeatures: N, groupSize, bits, q, scales, zeros } = projection.weight;
      const qweight = packQweight(q, K, N, bits);
      tensors.push({ name: `${prefix}.qweight`, shape: [qweight.length / N, N], data: qweight });
      tensors.push({ name: `${prefix}.scales`, shape: [K / groupSize, N], data: Float32Array.from(scales) });
      tensors.push({ name: `${prefix}.zeros`, shape: [K / groupSize, N], data: Float32Array.from(zeros) });
      quantization[prefix] = { bits, group: groupSize, ...(K !== projection.inFeatures ? { paddedInFeatures: K } : {}) };
    }
  });
  tensors.push({ name: 'model.norm.weight', shape: merged.rmsFinal.shape, data: merged.rmsFinal.data });
  if (!arch.tiedEmbeddings) tensors.push({ name: 'lm_head.weight', shape: merged.classifier.shape, data: merged.classifier.data });
  if (merged.tokenizer) tensors.push({ name: TOKENIZER_TENSOR, shape: [merged.tokenizer.bytes.length], data: merged.tokenizer.bytes });
  writeSafetensorsAtomic(path, tensors, {
    format: MERGED_FORMAT, rotary: 'hf', spec: merged.spec, architecture: JSON.stringify(arch), quantization: JSON.stringify(quantization),
    ...(merged.tokenizer ? { tokenizer_file: merged.tokenizer.name } : {}),
    ...(merged.plan ? { plan: merged.plan } : {}),
  });
}

/** Ŵ of a projection as float32 [out, in], llama2.c's layout: the values qalc's inference runs. */
export function denseWeight(projection: MergedProjection): Float32Array {
  return projection.kind === 'dense' ? projection.weight.data : denseOutIn(projection.weight, projection.inFeatures);
}

/** Ŵ of a quantized weight as float32 [out, in], llama2.c's layout: its first `K` input rows
 *  (the rest are pad = zero's padding, whose inputs are always 0). */
function denseOutIn(weight: QuantizedWeight, K: number): Float32Array {
  const N = weight.outFeatures;
  const w = dequantize(weight);
  const out = new Float32Array(K * N);
  for (let i = 0; i < K; i++) for (let o = 0; o < N; o++) out[o * K + i] = w[i * N + o]!;
  return out;
}

/**
 * A merged model as dense float32 weights in llama2.c's layout, so inference and evaluation
 * run it with the same code as any checkpoint (the values are exactly s·(q − z')).
 */
export function denseCheckpointOf(merged: MergedModel, path = merged.spec): Llama2cCheckpoint {
  const tensors = new Map<string, Tensor>();
  const layers = merged.blocks.map((block, l): LayerWeights => {
    const [q, k, v, o, gate, up, down] = PROJECTIONS.map((p) => {
      const projection = block.projections[p];
      return projection.kind === 'dense'
        ? projection.weight
        : asTensor(`layers.${l}.${p}`, [projection.weight.outFeatures, projection.inFeatures], denseOutIn(projection.weight, projection.inFeatures));
    }) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    for (const t of [q, k, v, o, gate, up, down, block.rmsAtt, block.rmsFfn]) tensors.set(t.name, t);
    return { rmsAtt: block.rmsAtt, rmsFfn: block.rmsFfn, wq: q, wk: k, wv: v, wo: o, w1: gate, w2: down, w3: up, q, k, v, o, gate, up, down };
  });
  return { path, arch: merged.arch, tokenEmbedding: merged.tokenEmbedding, layers, rmsFinal: merged.rmsFinal, classifier: merged.classifier, tensors };
}

/** The merged model in memory as dense weights, for generation from a spec's run. */
export function mergedDenseCheckpoint(model: QaLoraModel, weights: TrainableCheckpoint): Llama2cCheckpoint {
  return denseCheckpointOf(mergeModel(model, weights, 'merged'));
}

function asTensor(name: string, shape: readonly number[], data: Float32Array): Tensor {
  return { name, shape, data };
}

/** A stored tensor of exactly `count` values. */
function sized(file: SafetensorsFile, path: string, name: string, count: number) {
  const data = tensor(file, name, path).data;
  if (data.length !== count) throw new SafetensorsError(path, `tensor ${name} has ${data.length} values, expected ${count}`);
  return data;
}

function metadataJson(file: SafetensorsFile, path: string, key: string): unknown {
  try {
    return JSON.parse(file.metadata[key] ?? '');
  } catch {
    throw new SafetensorsError(path, `its metadata '${key}' is not valid JSON`);
  }
}

/** The architecture the file says it has, every field checked: the shapes below come from it. */
function storedArchitecture(file: SafetensorsFile, path: string): Architecture {
  const arch = metadataJson(file, path, 'architecture') as Record<string, unknown> | null;
  for (const field of ARCHITECTURE_FIELDS) {
    const value = arch?.[field];
    if (!(typeof value === 'number' && Number.isSafeInteger(value) && value > 0)) throw new SafetensorsError(path, `its metadata 'architecture' lacks ${field}, or it is not a positive integer`);
  }
  const stored = arch as unknown as Architecture;
  if (typeof stored.tiedEmbeddings !== 'boolean') throw new SafetensorsError(path, "its metadata 'architecture' lacks tiedEmbeddings (true or false)");
  // Files merged before the architecture carried θ and ε were of LLaMA's.
  const ropeAndNorm: { ropeTheta: number; rmsNormEps: number } = { ...LLAMA_ROPE_AND_NORM };
  for (const field of ['ropeTheta', 'rmsNormEps'] as const) {
    const value: unknown = stored[field];
    if (value === undefined) continue;
    if (!validRopeAndNorm(value)) throw new SafetensorsError(path, `its metadata 'architecture' has ${field} ${JSON.stringify(value)}, not a positive number`);
    ropeAndNorm[field] = value;
  }
  const checked: Architecture = {
    dim: stored.dim, hiddenDim: stored.hiddenDim, layers: stored.layers, heads: stored.heads, kvHeads: stored.kvHeads, vocab: stored.vocab,
    context: stored.context, tiedEmbeddings: stored.tiedEmbeddings, ...ropeAndNorm,
  };
  if (checked.dim % checked.heads !== 0 || checked.heads % checked.kvHeads !== 0) throw new SafetensorsError(path, `its architecture's dim ${checked.dim}, heads ${checked.heads} and kvHeads ${checked.kvHeads} do not divide`);
  const odd = oddHeadSize(checked);
  if (odd) throw new SafetensorsError(path, `its architecture's ${odd}`);
  return checked;
}

const STORED_BITS: readonly (Bits | null)[] = [2, 3, 4, 8, null];

/** A stored projection as the file holds it (the file's row order). */
function storedProjection(file: SafetensorsFile, path: string, prefix: string, q: LayerQuantization, inFeatures: number, outFeatures: number, name: string): MergedProjection {
  const rows = q?.paddedInFeatures ?? inFeatures;
  const padding = rows - inFeatures;
  if (!STORED_BITS.includes(q?.bits) || !(Number.isSafeInteger(q.group) && q.group > 0 && Number.isSafeInteger(rows) && rows % q.group === 0 && padding >= 0 && padding < q.group)) {
    const padded = q?.paddedInFeatures === undefined ? '' : ` with in-features ${inFeatures} padded to ${rows}`;
    throw new SafetensorsError(path, `${prefix}: bits ${q?.bits} and group ${q?.group}${padded} are not a quantization qalc writes`);
  }
  if (q.bits === null) return { prefix, kind: 'dense', weight: asTensor(name, [outFeatures, inFeatures], Float32Array.from(sized(file, path, `${prefix}.weight`, inFeatures * outFeatures))) };
  const groups = rows / q.group;
  const qweight = sized(file, path, `${prefix}.qweight`, packedWords(rows, q.bits) * outFeatures) as Int32Array;
  const codes = unpackQweight(qweight, rows, outFeatures, q.bits);
  const scales = Float64Array.from(sized(file, path, `${prefix}.scales`, groups * outFeatures));
  const zeros = Float64Array.from(sized(file, path, `${prefix}.zeros`, groups * outFeatures));
  return { prefix, kind: 'quantized', weight: { inFeatures: rows, outFeatures, groupSize: q.group, bits: q.bits, q: codes, scales, zeros }, inFeatures };
}

/** A stored projection turned from Hugging Face's row order back into qalc's. */
function fromHfOrder(arch: Architecture, p: ProjectionName, projection: MergedProjection): MergedProjection {
  const heads = rotaryHeads(arch, p);
  if (heads === undefined) return projection;
  if (projection.kind === 'dense') {
    const cols = projection.weight.shape[1]!;
    return { ...projection, weight: { ...projection.weight, data: unpermuteFromHf(projection.weight.data, heads, cols) } };
  }
  return { ...projection, weight: reorderOutputColumns(projection.weight, inversePermutation(hfRowOrder(projection.weight.outFeatures, heads))) };
}

/**
 * Reads a merged model (qalc-merged-2, or -1 in its old row order). Everything is checked on
 * the way in — metadata, every tensor's size, no NaN or ±Infinity — so a damaged file is named
 * here rather than printing "loss NaN" later.
 */
export function readMergedModel(path: string): MergedModel {
  const file = readSafetensors(path);
  const format = file.metadata.format;
  if (format !== MERGED_FORMAT && format !== LEGACY_FORMAT) throw new SafetensorsError(path, `not a merged qalc model (format ${JSON.stringify(format)})`);
  const hfOrder = format === MERGED_FORMAT;
  if (hfOrder && file.metadata.rotary !== 'hf') throw new SafetensorsError(path, `its metadata 'rotary' is ${JSON.stringify(file.metadata.rotary)}, not "hf": the q and k rows' order is unknown`);
  for (const t of file.tensors.values()) {
    if (t.name === TOKENIZER_TENSOR) continue;
    const bad = firstNonFinite(t.data);
    if (bad >= 0) throw new SafetensorsError(path, `tensor ${t.name} holds ${t.data[bad]} at index ${bad}: the model is damaged, or was merged from a run that diverged`);
  }
  const arch = storedArchitecture(file, path);
  const quantization = metadataJson(file, path, 'quantization') as Record<string, LayerQuantization> | null;
  if (typeof quantization !== 'object' || quantization === null) throw new SafetensorsError(path, "its metadata 'quantization' is not an object of layers");
  const kvDim = (arch.dim / arch.heads) * arch.kvHeads;
  const shapes: Record<ProjectionName, [number, number]> = {
    q: [arch.dim, arch.dim], k: [arch.dim, kvDim], v: [arch.dim, kvDim], o: [arch.dim, arch.dim],
    gate: [arch.dim, arch.hiddenDim], up: [arch.dim, arch.hiddenDim], down: [arch.hiddenDim, arch.dim],
  };
  const vector = (name: string, count: number) => sized(file, path, name, count) as Float32Array;
  const blocks = Array.from({ length: arch.layers }, (_, l): MergedBlock => {
    const projections = {} as Record<ProjectionName, MergedProjection>;
    for (const p of PROJECTIONS) {
      const prefix = `model.layers.${l}.${HF_PROJECTION_NAMES[p]}`;
      const q = quantization[prefix];
      if (!q) throw new SafetensorsError(path, `no quantization record for ${prefix}`);
      const [K, N] = shapes[p];
      const stored = storedProjection(file, path, prefix, q, K, N, `layers.${l}.${p}`);
      projections[p] = hfOrder ? fromHfOrder(arch, p, stored) : stored;
    }
    const rmsAtt = asTensor(`layers.${l}.rms_att`, [arch.dim], vector(`model.layers.${l}.input_layernorm.weight`, arch.dim));
    const rmsFfn = asTensor(`layers.${l}.rms_ffn`, [arch.dim], vector(`model.layers.${l}.post_attention_layernorm.weight`, arch.dim));
    return { rmsAtt, rmsFfn, projections };
  });
  const tokenEmbedding = asTensor('token_embedding', [arch.vocab, arch.dim], vector('model.embed_tokens.weight', arch.vocab * arch.dim));
  const rmsFinal = asTensor('rms_final', [arch.dim], vector('model.norm.weight', arch.dim));
  const classifier = arch.tiedEmbeddings ? tokenEmbedding : asTensor('wcls', [arch.vocab, arch.dim], vector('lm_head.weight', arch.vocab * arch.dim));
  const tokenizerTensor = file.tensors.get(TOKENIZER_TENSOR);
  if (tokenizerTensor && !(tokenizerTensor.data instanceof Uint8Array)) throw new SafetensorsError(path, `tensor ${TOKENIZER_TENSOR} is not U8 bytes`);
  const tokenizer = tokenizerTensor ? { name: file.metadata.tokenizer_file ?? 'tokenizer.bin', bytes: tokenizerTensor.data as Uint8Array } : undefined;
  return {
    spec: file.metadata.spec ?? '', arch, tokenEmbedding, blocks, rmsFinal, classifier,
    ...(tokenizer ? { tokenizer } : {}), ...(file.metadata.plan ? { plan: file.metadata.plan } : {}),
  };
}

export function readMergedModelAsDense(path: string): Llama2cCheckpoint {
  return denseCheckpointOf(readMergedModel(path), path);
}
