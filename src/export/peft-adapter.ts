// A run's adapters alone, for PEFT: adapter_config.json and adapter_model.safetensors in the
// layout PEFT 0.21 writes (../shared/models/stories260K-hf-peft-lora/: F32
// `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r], names sorted,
// metadata {"format": "pt"}), on the Hugging Face version of the base model: Hugging Face's
// rotary order, so B's rows of q and k are permuted as transformers permutes those weights
// (A's columns are the layer's inputs, which no permutation touches).
//
// Two variants, both computing qalc's σ·pool(x)·A·B on the dequantized, unmerged base:
//  - `qalora`: PEFT's use_qalora, A pooled over qalora_group_size inputs. PEFT takes the mean of
//    each group and multiplies it by L = in/g, where qalc's pooling is c·Σ (c = 1/g for mean, 1
//    for sum): lora_A = Aᵀ · c·g / L. PEFT has one qalora_group_size for all layers, and applies
//    QA-LoRA only to GPTQ layers.
//  - `lora`: a plain LoRA that any PEFT applies to any base: A expanded over its groups,
//    lora_A[j, i] = c · A[⌊i/g⌋, j]. Exact, g times larger.
// σ = lora_alpha / r as in PEFT (no rslora); other ranks or alphas go to rank_pattern and
// alpha_pattern.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Architecture } from '../model/architecture.ts';
import { hfRowOrder, rotaryHeads } from '../model/rope-permutation.ts';
import { poolingFactor, type Pooling } from '../reference/adapter.ts';
import type { ProjectionName } from '../train/qalora-spec.ts';
import { encodeSafetensors, type NamedTensor } from './safetensors.ts';

/** One trained adapter in qalc's form: A L×r and B r×N row-major, llama2.c row order. */
export interface ExportedAdapter {
  /** Hugging Face module name, e.g. model.layers.0.self_attn.q_proj. */
  readonly module: string;
  readonly projection: ProjectionName;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly groupSize: number;
  readonly rank: number;
  readonly scaling: number;
  readonly pooling: Pooling;
  readonly a: Float64Array;
  readonly b: Float64Array;
}

export interface AdapterSet {
  readonly spec: string;
  readonly arch: Architecture;
  readonly adapters: readonly ExportedAdapter[];
}

export type PeftVariant = 'qalora' | 'lora';

export class PeftExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PeftExportError';
  }
}

/** lora_A and lora_B of one adapter in PEFT's form (see the top of this file). */
export function peftMatrices(arch: Architecture, adapter: ExportedAdapter, variant: PeftVariant): { a: Float64Array; aCols: number; b: Float64Array } {
  const { inFeatures: K, outFeatures: N, groupSize: g, rank: r } = adapter;
  const L = K / g;
  const c = poolingFactor(adapter.pooling, g);
  const aCols = variant === 'qalora' ? L : K;
  const a = new Float64Array(r * aCols);
  for (let j = 0; j < r; j++) {
    if (variant === 'qalora') {
      for (let k = 0; k < L; k++) a[j * L + k] = adapter.a[k * r + j]! * (c * g) / L;
    } else {
      for (let i = 0; i < K; i++) a[j * K + i] = adapter.a[Math.floor(i / g) * r + j]! * c;
    }
  }
  const heads = rotaryHeads(arch, adapter.projection);
  const order = heads === undefined ? undefined : hfRowOrder(N, heads);
  const b = new Float64Array(N * r);
  for (let o = 0; o < N; o++) {
    const from = order ? order[o]! : o;
    for (let j = 0; j < r; j++) b[o * r + j] = adapter.b[j * N + from]!;
  }
  return { a, aCols, b };
}

function mostCommon<T>(values: readonly T[]): T {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts.entries()].sort((x, y) => y[1] - x[1])[0]![0];
}

/** adapter_config.json's fields, in the reference's key order. */
function adapterConfig(set: AdapterSet, variant: PeftVariant): Record<string, unknown> {
  const { adapters } = set;
  const r = mostCommon(adapters.map((a) => a.rank));
  const alphaOf = (a: ExportedAdapter) => a.scaling * a.rank;
  const alpha = mostCommon(adapters.map(alphaOf));
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  for (const a of adapters) {
    if (a.rank !== r) rankPattern[a.module] = a.rank;
    if (alphaOf(a) !== alpha) alphaPattern[a.module] = alphaOf(a);
  }
  const projections = [...new Set(adapters.map((a) => a.module.split('.').at(-1)!))];
  const everywhere = projections.every((p) => adapters.filter((a) => a.module.endsWith(`.${p}`)).length === set.arch.layers);
  const groups = [...new Set(adapters.map((a) => a.groupSize))];
  return {
    alora_invocation_tokens: null, alpha_pattern: alphaPattern, arrow_config: null,
    auto_mapping: { base_model_class: 'LlamaForCausalLM', parent_library: 'transformers.models.llama.modeling_llama' },
    // Not the spec's float checkpoint: the adapter applies to the dequantized quantized base
    // (--with-base writes it), which has no name of its own.
    base_model_name_or_path: null, bias: 'none', corda_config: null, ensure_weight_tying: false, eva_config: null,
    exclude_modules: null, fan_in_fan_out: false, inference_mode: true, init_lora_weights: false, kasa_config: null,
    layer_replication: null, layers_pattern: null, layers_to_transform: null, loftq_config: {}, lora_alpha: alpha,
    lora_bias: false, lora_dropout: 0.0, lora_ga_config: null, megatron_config: null, megatron_core: 'megatron.core',
    modules_to_save: null, monteclora_config: null, peft_type: 'LORA', peft_version: '0.21.0',
    qalora_group_size: variant === 'qalora' ? groups[0]! : 16, r, rank_pattern: rankPattern, revision: null,
    target_modules: everywhere ? projections : adapters.map((a) => a.module),
    target_parameters: null, task_type: null, trainable_token_indices: null, use_bdlora: null, use_dora: false,
    use_qalora: variant === 'qalora', use_rslora: false, velora_config: null,
  };
}

/** Refuses what PEFT cannot hold, naming the layers. */
function checkVariant(set: AdapterSet, variant: PeftVariant): void {
  if (set.adapters.length === 0) throw new PeftExportError(`spec ${set.spec} has no adapters to export`);
  if (variant !== 'qalora') return;
  const groups = new Map<number, string[]>();
  for (const a of set.adapters) groups.set(a.groupSize, [...(groups.get(a.groupSize) ?? []), a.module]);
  if (groups.size > 1) {
    const listed = [...groups.entries()].map(([g, modules]) => `group ${g}: ${modules.length > 3 ? `${modules.slice(0, 3).join(', ')} and ${modules.length - 3} more` : modules.join(', ')}`).join('; ');
    throw new PeftExportError(`PEFT's use_qalora has one qalora_group_size for every layer, and this spec's adapters pool over ${groups.size} group sizes (${listed}): export --format peft-lora instead (exact on any PEFT)`);
  }
}

export interface PeftResult {
  readonly files: readonly string[];
  readonly notices: readonly string[];
}

/** Writes adapter_config.json and adapter_model.safetensors into `dir` (a temporary folder). */
export function writePeftAdapter(dir: string, set: AdapterSet, variant: PeftVariant): PeftResult {
  checkVariant(set, variant);
  for (const adapter of set.adapters) {
    // Every projection reads the model's width but down, which reads the hidden one.
    const layerInputs = adapter.projection === 'down' ? set.arch.hiddenDim : set.arch.dim;
    if (adapter.inFeatures !== layerInputs) throw new PeftExportError(`${adapter.module}: pad = zero pads its ${layerInputs} inputs to ${adapter.inFeatures}; a PEFT adapter applies to the unpadded layer, so it cannot be exported`);
  }
  const tensors: NamedTensor[] = [];
  for (const adapter of set.adapters) {
    const { a, aCols, b } = peftMatrices(set.arch, adapter, variant);
    const name = `base_model.model.${adapter.module}`;
    tensors.push({ name: `${name}.lora_A.weight`, shape: [adapter.rank, aCols], data: Float32Array.from(a) });
    tensors.push({ name: `${name}.lora_B.weight`, shape: [adapter.outFeatures, adapter.rank], data: Float32Array.from(b) });
  }
  tensors.sort((x, y) => (x.name < y.name ? -1 : 1));
  writeFileSync(join(dir, 'adapter_model.safetensors'), encodeSafetensors(tensors, { format: 'pt' }));
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(adapterConfig(set, variant), null, 2) + '\n');
  const notices = variant === 'qalora'
    ? ['notice: PEFT applies use_qalora adapters only to GPTQ-quantized layers (and cannot merge them): load it on a GPTQ export of the same quantized base']
    : ['notice: apply this LoRA to the dequantized, unmerged quantized base (qalc export --with-base writes it), not to the original float model'];
  return { files: ['adapter_config.json', 'adapter_model.safetensors'], notices };
}
