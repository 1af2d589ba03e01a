// qalc's own model format after `qalc merge`: an INT-N model again. Every adapter is folded into
// its layer's zero points (src/quant/merge.ts), which are stored as floats, so the merge loses
// nothing; q is stored in GPTQ v1's packed layout. One safetensors file with Hugging Face names:
//
//   model.embed_tokens.weight                     F32 [vocab, dim]
//   model.layers.<i>.input_layernorm.weight       F32 [dim]   (and post_attention_layernorm)
//   model.layers.<i>.self_attn.q_proj.qweight     I32 [⌈K·b/32⌉, N]   packed codes, lowest input lowest
//   model.layers.<i>.self_attn.q_proj.scales      F32 [K/g, N]
//   model.layers.<i>.self_attn.q_proj.zeros       F32 [K/g, N]        fractional after the merge
//   model.layers.<i>.mlp.down_proj.weight         F32 [N, K]          a projection left unquantized
//   model.norm.weight, lm_head.weight (untied models only)
//
// Metadata: format, the architecture and every layer's bits and group as JSON.
import { firstNonFinite } from '../model/finite.ts';
import { dequantize } from '../quant/dequantize.ts';
import { packedWords, packQweight, unpackQweight } from '../quant/gptq-pack.ts';
import { mergeAdapterIntoZeros } from '../quant/merge.ts';
import type { Bits, QuantizedWeight } from '../quant/quantized-weight.ts';
import { ARCHITECTURE_FIELDS, oddHeadSize, type Architecture } from '../model/architecture.ts';
import type { LayerWeights, Llama2cCheckpoint, Tensor } from '../model/llama2c-checkpoint.ts';
import type { QaLoraModel, TrainableCheckpoint } from '../train/qalora-model.ts';
import { PROJECTIONS, type ProjectionName } from '../train/qalora-spec.ts';
import { HF_PROJECTION_NAMES } from '../plan/layer-shapes.ts';
import { readSafetensors, SafetensorsError, tensor, writeSafetensorsAtomic, type NamedTensor, type SafetensorsFile } from './safetensors.ts';

export const MERGED_FORMAT = 'qalc-merged-1';


interface LayerQuantization {
  readonly bits: Bits | null;
  readonly group: number;
}

export type MergedProjection =
  | { readonly prefix: string; readonly kind: 'quantized'; readonly weight: QuantizedWeight }
  | { readonly prefix: string; readonly kind: 'dense'; readonly weight: Tensor };

/** Every projection of the model with its adapter folded into the zeros, block by block. */
export function mergedProjections(model: QaLoraModel, weights: TrainableCheckpoint): MergedProjection[][] {
  return model.blocks.map((block, l) => PROJECTIONS.map((p): MergedProjection => {
    const prefix = `model.layers.${l}.${HF_PROJECTION_NAMES[p]}`;
    const { base, adapter } = block[p].layer;
    if (base.kind === 'dense') {
      if (adapter) throw new Error(`${prefix}: merging an adapter into an unquantized layer is not supported`);
      return { prefix, kind: 'dense', weight: weights.layers[l]![p] };
    }
    const weight = adapter
      ? mergeAdapterIntoZeros(base.weight, { groupSize: adapter.groupSize, rank: adapter.rank, pooling: adapter.pooling, scaling: adapter.scaling, a: Float64Array.from(adapter.a), b: Float64Array.from(adapter.b) })
      : base.weight;
    return { prefix, kind: 'quantized', weight };
  }));
}

/** Folds every adapter of the model into its zeros and writes the result. */
export function writeMergedModel(path: string, model: QaLoraModel, weights: TrainableCheckpoint, spec: string): void {
  const arch = model.arch;
  const tensors: NamedTensor[] = [{ name: 'model.embed_tokens.weight', shape: weights.tokenEmbedding.shape, data: weights.tokenEmbedding.data }];
  const quantization: Record<string, LayerQuantization> = {};
  mergedProjections(model, weights).forEach((projections, l) => {
    const w = weights.layers[l]!;
    tensors.push({ name: `model.layers.${l}.input_layernorm.weight`, shape: w.rmsAtt.shape, data: w.rmsAtt.data });
    tensors.push({ name: `model.layers.${l}.post_attention_layernorm.weight`, shape: w.rmsFfn.shape, data: w.rmsFfn.data });
    for (const projection of projections) {
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
      quantization[prefix] = { bits, group: groupSize };
    }
  });
  tensors.push({ name: 'model.norm.weight', shape: weights.rmsFinal.shape, data: weights.rmsFinal.data });
  if (!arch.tiedEmbeddings) tensors.push({ name: 'lm_head.weight', shape: weights.classifier.shape, data: weights.classifier.data });
  writeSafetensorsAtomic(path, tensors, {
    format: MERGED_FORMAT, spec, architecture: JSON.stringify(arch), quantization: JSON.stringify(quantization),
  });
}

/** Ŵ of a quantized weight as float32 [out, in], llama2.c's layout. */
function denseOutIn(weight: QuantizedWeight): Float32Array {
  const { inFeatures: K, outFeatures: N } = weight;
  const w = dequantize(weight);
  const out = new Float32Array(K * N);
  for (let i = 0; i < K; i++) for (let o = 0; o < N; o++) out[o * K + i] = w[i * N + o]!;
  return out;
}

/** The merged model in memory as dense weights, for generation from a spec's run. */
export function mergedDenseCheckpoint(model: QaLoraModel, weights: Llama2cCheckpoint): Llama2cCheckpoint {
  const layers = mergedProjections(model, weights).map((projections, l): LayerWeights => {
    const [q, k, v, o, gate, up, down] = projections.map((projection, i) => projection.kind === 'dense'
      ? projection.weight
      : asTensor(`layers.${l}.${PROJECTIONS[i]}`, [projection.weight.outFeatures, projection.weight.inFeatures], denseOutIn(projection.weight))) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    const w = weights.layers[l]!;
    return { rmsAtt: w.rmsAtt, rmsFfn: w.rmsFfn, wq: q, wk: k, wv: v, wo: o, w1: gate, w2: down, w3: up, q, k, v, o, gate, up, down };
  });
  return { ...weights, layers };
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
  const checked = arch as unknown as Architecture;
  if (typeof checked.tiedEmbeddings !== 'boolean') throw new SafetensorsError(path, "its metadata 'architecture' lacks tiedEmbeddings (true or false)");
  if (checked.dim % checked.heads !== 0 || checked.heads % checked.kvHeads !== 0) throw new SafetensorsError(path, `its architecture's dim ${checked.dim}, heads ${checked.heads} and kvHeads ${checked.kvHeads} do not divide`);
  const odd = oddHeadSize(checked);
  if (odd) throw new SafetensorsError(path, `its architecture's ${odd}`);
  return checked;
}

const STORED_BITS: readonly (Bits | null)[] = [2, 3, 4, 8, null];

/** [out, in] float32 weights of a stored projection: dequantized Ŵ (K×N) transposed. */
function denseProjection(file: SafetensorsFile, path: string, prefix: string, q: LayerQuantization, inFeatures: number, outFeatures: number): Float32Array {
  if (!STORED_BITS.includes(q?.bits) || !(Number.isSafeInteger(q.group) && q.group > 0 && inFeatures % q.group === 0)) {
    throw new SafetensorsError(path, `${prefix}: bits ${q?.bits} and group ${q?.group} are not a quantization qalc writes`);
  }
  if (q.bits === null) return Float32Array.from(sized(file, path, `${prefix}.weight`, inFeatures * outFeatures));
  const groups = inFeatures / q.group;
  const qweight = sized(file, path, `${prefix}.qweight`, packedWords(inFeatures, q.bits) * outFeatures) as Int32Array;
  const codes = unpackQweight(qweight, inFeatures, outFeatures, q.bits);
  const scales = Float64Array.from(sized(file, path, `${prefix}.scales`, groups * outFeatures));
  const zeros = Float64Array.from(sized(file, path, `${prefix}.zeros`, groups * outFeatures));
  return denseOutIn({ inFeatures, outFeatures, groupSize: q.group, bits: q.bits, q: codes, scales, zeros });
}

/**
 * A merged model as dense float32 weights in llama2.c's layout, so inference and evaluation
 * run it with the same code as any checkpoint (the values are exactly s·(q − z')). Everything
 * is checked on the way in — metadata, every tensor's size, no NaN or ±Infinity — so a damaged
 * file is named here rather than printing "loss NaN" later.
 */
export function readMergedModelAsDense(path: string): Llama2cCheckpoint {
  const file = readSafetensors(path);
  if (file.metadata.format !== MERGED_FORMAT) throw new SafetensorsError(path, `not a merged qalc model (format ${JSON.stringify(file.metadata.format)})`);
  for (const t of file.tensors.values()) {
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
  const tensors = new Map<string, Tensor>();
  const layers: LayerWeights[] = Array.from({ length: arch.layers }, (_, l) => {
    const get = (p: ProjectionName) => {
      const prefix = `model.layers.${l}.${HF_PROJECTION_NAMES[p]}`;
      const q = quantization[prefix];
      if (!q) throw new SafetensorsError(path, `no quantization record for ${prefix}`);
      const [K, N] = shapes[p];
      return asTensor(`layers.${l}.${p}`, [N, K], denseProjection(file, path, prefix, q, K, N));
    };
    const [q, k, v, o, gate, up, down] = PROJECTIONS.map(get) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    const rmsAtt = asTensor(`layers.${l}.rms_att`, [arch.dim], vector(`model.layers.${l}.input_layernorm.weight`, arch.dim));
    const rmsFfn = asTensor(`layers.${l}.rms_ffn`, [arch.dim], vector(`model.layers.${l}.post_attention_layernorm.weight`, arch.dim));
    for (const t of [q, k, v, o, gate, up, down, rmsAtt, rmsFfn]) tensors.set(t.name, t);
    return { rmsAtt, rmsFfn, wq: q, wk: k, wv: v, wo: o, w1: gate, w2: down, w3: up, q, k, v, o, gate, up, down };
  });
  const tokenEmbedding = asTensor('token_embedding', [arch.vocab, arch.dim], vector('model.embed_tokens.weight', arch.vocab * arch.dim));
  const rmsFinal = asTensor('rms_final', [arch.dim], vector('model.norm.weight', arch.dim));
  const classifier = arch.tiedEmbeddings ? tokenEmbedding : asTensor('wcls', [arch.vocab, arch.dim], vector('lm_head.weight', arch.vocab * arch.dim));
  return { path, arch, tokenEmbedding, layers, rmsFinal, classifier, tensors };
}
