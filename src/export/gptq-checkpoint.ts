// A merged qalc model written as a GPTQ v1 checkpoint (AutoGPTQ / GPTQModel / transformers /
// vLLM layout; src/model/gptq-checkpoint.ts reads it back):
//
//   model.safetensors   per quantized projection, under its Hugging Face name:
//                         qweight I32 [K·b/32, N], qzeros I32 [L, N·b/32] (z − 1),
//                         scales F16 [L, N], g_idx I32 [K] (⌊i/g⌋);
//                       projections GPTQ cannot pack, embeddings, norms, lm_head: F32 .weight
//   config.json         the LLaMA config with quantization_config
//   quantize_config.json, the tokenizer files
//
// Hugging Face rotary order for q and k (their output columns move, codes, scales and zeros
// alike). What is lossy, and reported, not hidden: a merged zero z' is fractional and GPTQ
// stores integers in [1, 2^b], so z' is rounded (and clamped), and scales become fp16; every
// weight of a group moves by s·(z' − z), so per layer the max and mean |Ŵ_gptq − Ŵ_merged| are
// measured. GPTQ packs K·b and N·b bits in whole 32-bit words and one bits/group for the whole
// model: a layer that does not fit is refused under `strict`, otherwise written as float32 with
// a notice and left out of `modules_in_block_to_quantize`, never silently changed.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headDim, type Architecture } from '../model/architecture.ts';
import type { Tensor } from '../model/llama2c-checkpoint.ts';
import { hfRowOrder, permuteToHf, reorderOutputColumns, rotaryHeads } from '../model/rope-permutation.ts';
import { HF_PROJECTION_NAMES } from '../plan/layer-shapes.ts';
import { dequantizeOutIn } from '../quant/dequantize.ts';
import { packQweight, packQzeros, sequentialGroupIndex, storableZeros, type ZeroFormat } from '../quant/gptq-pack.ts';
import { roundZerosForGptq } from '../quant/merge.ts';
import type { Bits, QuantizedWeight } from '../quant/quantized-weight.ts';
import { f16Bits, f16Value } from '../runtime/cuda/host-data.ts';
import { PROJECTIONS, type ProjectionName } from '../train/qalora-spec.ts';
import { encodeSafetensors, type NamedTensor } from './safetensors.ts';

/** One projection after the merge, llama2.c row order: quantized (fractional zeros) or float [out, in]. */
export type GptqSourceProjection =
  | { readonly prefix: string; readonly kind: 'quantized'; readonly weight: QuantizedWeight }
  | { readonly prefix: string; readonly kind: 'dense'; readonly weight: Tensor };

/** What the writer needs of a merged model (the shape of src/export's MergedModel). */
export interface GptqSource {
  readonly arch: Architecture;
  readonly tokenEmbedding: Tensor;
  readonly blocks: readonly { readonly rmsAtt: Tensor; readonly rmsFfn: Tensor; readonly projections: Readonly<Record<ProjectionName, GptqSourceProjection>> }[];
  readonly rmsFinal: Tensor;
  readonly classifier: Tensor;
  readonly tokenizer?: { readonly name: string; readonly bytes: Uint8Array };
}

export interface GptqWriteOptions {
  /** Refuse layers GPTQ cannot pack instead of writing them as float32. */
  readonly strict?: boolean;
  /** `gptq` (v1, zeros stored minus one: what AutoGPTQ, transformers and vLLM read) or GPTQModel's `gptq_v2`. */
  readonly format?: ZeroFormat;
  /** More files to copy in as they are (tokenizer.json, tokenizer.model, …): name → bytes. */
  readonly extraFiles?: ReadonlyMap<string, Uint8Array>;
}

export interface GptqLayerError {
  readonly layer: string;
  readonly bits: number;
  readonly group: number;
  /** max and mean |Ŵ_gptq − Ŵ_merged| over the layer's weights. */
  readonly maxAbsError: number;
  readonly meanAbsError: number;
  /** Groups whose rounded zero fell outside [1, 2^b] and were clamped. */
  readonly clampedGroups: number;
}

export interface GptqWritten {
  readonly files: readonly string[];
  readonly notices: readonly string[];
  readonly report: { readonly bits: number; readonly groupSize: number; readonly layers: readonly GptqLayerError[]; readonly unquantized: readonly string[] };
}

export class GptqExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExportError';
  }
}

/** Why GPTQ cannot pack this weight, or undefined when it can. */
export function gptqPackingProblem(weight: QuantizedWeight): string | undefined {
  const { inFeatures: K, outFeatures: N, bits } = weight;
  if ((K * bits) % 32 !== 0) return `in_features ${K} × ${bits} bits = ${K * bits} is not a multiple of 32 (qweight packs whole 32-bit words along the input)`;
  if ((N * bits) % 32 !== 0) return `out_features ${N} × ${bits} bits = ${N * bits} is not a multiple of 32 (qzeros packs whole 32-bit words along the output)`;
  return undefined;
}

/** The weight GPTQ stores: zeros rounded and clamped to integers, scales rounded to fp16. */
export function gptqStoredWeight(weight: QuantizedWeight, format: ZeroFormat = 'gptq'): { weight: QuantizedWeight; clampedGroups: number } {
  const rounded = roundZerosForGptq(weight, format);
  const scales = Float64Array.from(weight.scales, (s) => f16Value(f16Bits(s)));
  return { weight: { ...rounded.weight, scales }, clampedGroups: rounded.clampedGroups };
}

function weightError(merged: QuantizedWeight, stored: QuantizedWeight): { max: number; mean: number } {
  const a = dequantizeOutIn(merged);
  const b = dequantizeOutIn(stored);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / a.length };
}

function llamaConfig(arch: Architecture): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', attention_bias: false, bos_token_id: 1, eos_token_id: 2,
    head_dim: headDim(arch), hidden_act: 'silu', hidden_size: arch.dim, intermediate_size: arch.hiddenDim,
    max_position_embeddings: arch.context, mlp_bias: false, num_attention_heads: arch.heads, num_hidden_layers: arch.layers,
    num_key_value_heads: arch.kvHeads, rms_norm_eps: arch.rmsNormEps, rope_theta: arch.ropeTheta, tie_word_embeddings: arch.tiedEmbeddings,
    torch_dtype: 'float32', use_cache: true, vocab_size: arch.vocab,
  };
}

/** Writes the GPTQ directory's files into `dir` (an empty, temporary folder: the caller renames it into place). */
export function writeGptqDirectory(dir: string, source: GptqSource, options: GptqWriteOptions = {}): GptqWritten {
  const { arch } = source;
  const format = options.format ?? 'gptq';
  const notices: string[] = [];
  const quantized = source.blocks.flatMap((b) => PROJECTIONS.map((p) => b.projections[p])).filter((p) => p.kind === 'quantized');
  if (quantized.length === 0) throw new GptqExportError('the model has no quantized projection: a GPTQ checkpoint of it would be a float model (export it as qalc or a Hugging Face directory)');
  // GPTQ v1 has one bits and one group size: the packable layers must agree on both.
  const packable = quantized.filter((p) => gptqPackingProblem(p.weight) === undefined);
  const first = (packable[0] ?? quantized[0]!).weight;
  const bits: Bits = first.bits;
  const groupSize = first.groupSize;
  const unquantized: string[] = [];
  const refuseOrFloat = (prefix: string, why: string) => {
    if (options.strict) throw new GptqExportError(`${prefix}: GPTQ cannot store this layer: ${why}`);
    unquantized.push(prefix);
    notices.push(`notice: ${prefix} is written unquantized (float32 .weight, the merged Ŵ exactly): ${why}`);
  };

  const tensors: NamedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [arch.vocab, arch.dim], data: source.tokenEmbedding.data }];
  const layers: GptqLayerError[] = [];
  source.blocks.forEach((block, l) => {
    tensors.push({ name: `model.layers.${l}.input_layernorm.weight`, shape: [arch.dim], data: block.rmsAtt.data });
    tensors.push({ name: `model.layers.${l}.post_attention_layernorm.weight`, shape: [arch.dim], data: block.rmsFfn.data });
    for (const p of PROJECTIONS) {
      const projection = block.projections[p];
      const prefix = `model.layers.${l}.${HF_PROJECTION_NAMES[p]}`;
      const heads = rotaryHeads(arch, p);
      const writeFloat = (data: Float32Array, [N, K]: readonly number[]) => tensors.push({ name: `${prefix}.weight`, shape: [N!, K!], data: heads === undefined ? data : permuteToHf(data, heads, K!) });
      if (projection.kind === 'dense') {
        writeFloat(projection.weight.data, projection.weight.shape);
        unquantized.push(prefix);
        continue;
      }
      const merged = projection.weight;
      const problem = gptqPackingProblem(merged)
        ?? (merged.bits !== bits || merged.groupSize !== groupSize ? `it is ${merged.bits}-bit with group ${merged.groupSize}, and a GPTQ v1 checkpoint has one bits and group size (${bits}, ${groupSize}, as ${packable.length > 0 ? 'the first packable layer' : 'the first layer'})` : undefined);
      if (problem) {
        refuseOrFloat(prefix, problem);
        writeFloat(dequantizeOutIn(merged), [merged.outFeatures, merged.inFeatures]);
        continue;
      }
      const { weight: stored, clampedGroups } = gptqStoredWeight(merged, format);
      for (let g = 0; g < stored.scales.length; g++) {
        if (!Number.isFinite(stored.scales[g]!)) throw new GptqExportError(`${prefix}: scale ${merged.scales[g]} does not fit in fp16`);
      }
      const error = weightError(merged, stored);
      layers.push({ layer: prefix, bits, group: groupSize, maxAbsError: error.max, meanAbsError: error.mean, clampedGroups });
      const { inFeatures: K, outFeatures: N } = stored;
      const hf = heads === undefined ? stored : reorderOutputColumns(stored, hfRowOrder(N, heads));
      tensors.push({ name: `${prefix}.qweight`, shape: [(K * bits) / 32, N], data: packQweight(hf.q, K, N, bits) });
      tensors.push({ name: `${prefix}.qzeros`, shape: [K / groupSize, (N * bits) / 32], data: packQzeros(hf.zeros, K / groupSize, N, bits, format) });
      tensors.push({ name: `${prefix}.scales`, shape: [K / groupSize, N], data: Uint16Array.from(hf.scales, f16Bits) });
      tensors.push({ name: `${prefix}.g_idx`, shape: [K], data: sequentialGroupIndex(K, groupSize) });
    }
  });
  tensors.push({ name: 'model.norm.weight', shape: [arch.dim], data: source.rmsFinal.data });
  if (!arch.tiedEmbeddings) tensors.push({ name: 'lm_head.weight', shape: [arch.vocab, arch.dim], data: source.classifier.data });
  if (layers.length === 0) throw new GptqExportError(`no layer of the model can be GPTQ-packed: ${notices.join('; ')}`);

  // Which projections of a block are quantized must be the same in every block: the config lists them once.
  const quantizedModules = PROJECTIONS.map((p) => HF_PROJECTION_NAMES[p]!).filter((m) => source.blocks.every((_, l) => !unquantized.includes(`model.layers.${l}.${m}`)));
  const mixed = PROJECTIONS.map((p) => HF_PROJECTION_NAMES[p]!).filter((m) => !quantizedModules.includes(m) && source.blocks.some((_, l) => !unquantized.includes(`model.layers.${l}.${m}`)));
  if (mixed.length > 0) throw new GptqExportError(`${mixed.join(', ')}: quantized in some blocks and not in others, which a GPTQ config cannot say (modules_in_block_to_quantize is one list for every block)`);
  const quantizeConfig: Record<string, unknown> = {
    bits, group_size: groupSize, damp_percent: 0.01, desc_act: false, static_groups: false, sym: false, true_sequential: true,
    quant_method: 'gptq', checkpoint_format: format, model_file_base_name: 'model',
    ...(quantizedModules.length < PROJECTIONS.length ? { modules_in_block_to_quantize: [quantizedModules] } : {}),
  };
  const clamped = layers.reduce((n, l) => n + l.clampedGroups, 0);
  if (clamped > 0) notices.push(`notice: ${clamped} merged zeros fell outside [${storableZeros(bits, format).lowest}, ${storableZeros(bits, format).highest}] and were clamped (their groups moved by more than s/2)${format === 'gptq' ? '; gptq_v2 stores zeros of 0' : ''}`);

  const files: [string, Uint8Array | string][] = [
    ['model.safetensors', encodeSafetensors(tensors, { format: 'pt' })],
    ['config.json', JSON.stringify({ ...llamaConfig(arch), quantization_config: quantizeConfig }, null, 2) + '\n'],
    ['quantize_config.json', JSON.stringify(quantizeConfig, null, 2) + '\n'],
  ];
  if (source.tokenizer) files.push([source.tokenizer.name, source.tokenizer.bytes]);
  for (const [name, bytes] of options.extraFiles ?? []) if (!files.some(([n]) => n === name)) files.push([name, bytes]);
  for (const [name, content] of files) writeFileSync(join(dir, name), content);
  return { files: files.map(([name]) => name), notices, report: { bits, groupSize, layers, unquantized } };
}
