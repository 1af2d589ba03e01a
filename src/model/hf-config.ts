// Shapes from a Hugging Face model directory (`config.json`) and, for GPTQ checkpoints, the
// quantization they were made with (`quantize_config.json`, or `quantization_config` in
// config.json). Only these small JSON files are read: compiling never needs the weights.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LLAMA_ROPE_AND_NORM, validRopeAndNorm, type Architecture } from './architecture.ts';
import { SUPPORTED_BITS, type Bits } from '../quant/quantized-weight.ts';
import { CheckpointError } from './llama2c-header.ts';

export interface GptqQuantization {
  readonly bits: Bits;
  /** Inputs per group; −1 (AutoGPTQ's "no groups") is one group of all in-features per column. */
  readonly groupSize: number;
  readonly actOrder: boolean;
  readonly symmetric: boolean;
  /** `gptq` (v1) stores each zero minus one; GPTQModel's `gptq_v2` stores it as it is. */
  readonly checkpointFormat: 'gptq' | 'gptq_v2';
  /** The projections of every block that are quantized (`self_attn.q_proj`, …); absent: all seven. */
  readonly modules?: readonly string[];
  /** The file the settings come from, for messages. */
  readonly path: string;
}

type Json = Record<string, unknown>;

function readJson(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CheckpointError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Json;
  } catch (e) {
    throw new CheckpointError(path, `not valid JSON: ${(e as Error).message}`);
  }
}

function positiveInt(json: Json, key: string, path: string, fallback?: number): number {
  const value = json[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new CheckpointError(path, `"${key}" must be a positive integer, found ${JSON.stringify(value)}`);
  }
  return value;
}

function refuseWhatTheRuntimeCannotRun(config: Json, path: string): void {
  const type = config.model_type;
  const architectures = config.architectures;
  if (type !== 'llama') throw new CheckpointError(path, `model_type ${JSON.stringify(type)}: qalc reads LLaMA models (model_type "llama") only`);
  if (Array.isArray(architectures) && !architectures.every((a) => a === 'LlamaForCausalLM')) {
    throw new CheckpointError(path, `architectures ${JSON.stringify(architectures)}: qalc reads LlamaForCausalLM only`);
  }
  const act = config.hidden_act ?? 'silu';
  if (act !== 'silu') throw new CheckpointError(path, `hidden_act ${JSON.stringify(act)}: LLaMA's MLP is SwiGLU, qalc runs "silu" only`);
  if (config.rope_scaling !== undefined && config.rope_scaling !== null) throw new CheckpointError(path, `rope_scaling ${JSON.stringify(config.rope_scaling)} is not supported: qalc runs plain RoPE`);
  const parameters = (config.rope_parameters ?? {}) as Json;
  const ropeType = parameters.rope_type ?? 'default';
  if (ropeType !== 'default') throw new CheckpointError(path, `rope_parameters.rope_type ${JSON.stringify(ropeType)} is not supported: qalc runs plain RoPE`);
  for (const bias of ['attention_bias', 'mlp_bias']) {
    if (config[bias] === true) throw new CheckpointError(path, `${bias} = true: qalc runs LLaMA without biases`);
  }
}

/**
 * rope_theta, at the top level (transformers < 5) or in rope_parameters (transformers 5), and
 * rms_norm_eps; each defaults to LLaMA's as transformers' LlamaConfig does. Where both places give
 * a θ they must agree, since a reader could pick either.
 */
function ropeAndNorm(config: Json, path: string): Pick<Architecture, 'ropeTheta' | 'rmsNormEps'> {
  const parameters = (config.rope_parameters ?? {}) as Json;
  const top = config.rope_theta ?? undefined, nested = parameters.rope_theta ?? undefined;
  if (top !== undefined && nested !== undefined && top !== nested) {
    throw new CheckpointError(path, `rope_theta is ${JSON.stringify(top)} but rope_parameters.rope_theta is ${JSON.stringify(nested)}: which one is the model's?`);
  }
  const ropeTheta = top ?? nested ?? LLAMA_ROPE_AND_NORM.ropeTheta;
  if (!validRopeAndNorm(ropeTheta)) throw new CheckpointError(path, `rope_theta must be a positive number, found ${JSON.stringify(ropeTheta)}`);
  const rmsNormEps = config.rms_norm_eps ?? LLAMA_ROPE_AND_NORM.rmsNormEps;
  if (!validRopeAndNorm(rmsNormEps)) throw new CheckpointError(path, `rms_norm_eps must be a positive number, found ${JSON.stringify(rmsNormEps)}`);
  return { ropeTheta, rmsNormEps };
}

export function readHfArchitecture(dir: string): Architecture {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) throw new CheckpointError(dir, 'a folder without config.json: not a Hugging Face model directory (a llama2.c checkpoint is a file)');
  const config = readJson(path);
  refuseWhatTheRuntimeCannotRun(config, path);
  const heads = positiveInt(config, 'num_attention_heads', path);
  const dim = positiveInt(config, 'hidden_size', path);
  if (config.head_dim !== undefined && config.head_dim !== null && config.head_dim !== dim / heads) {
    throw new CheckpointError(path, `"head_dim" is ${JSON.stringify(config.head_dim)}, but hidden_size / num_attention_heads = ${dim / heads}: qalc runs heads of hidden_size / num_attention_heads`);
  }
  return {
    dim,
    hiddenDim: positiveInt(config, 'intermediate_size', path),
    layers: positiveInt(config, 'num_hidden_layers', path),
    heads,
    kvHeads: positiveInt(config, 'num_key_value_heads', path, heads),
    vocab: positiveInt(config, 'vocab_size', path),
    context: positiveInt(config, 'max_position_embeddings', path),
    tiedEmbeddings: config.tie_word_embeddings === true,
    ...ropeAndNorm(config, path),
  };
}

/** config.json's `quantization_config`, when it has one. */
export function quantizationConfigOf(dir: string): Json | undefined {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) return undefined;
  const q = readJson(path).quantization_config;
  return q !== null && typeof q === 'object' && !Array.isArray(q) ? q as Json : undefined;
}

function parseGptqQuantization(q: Json, path: string): GptqQuantization {
  const method = q.quant_method ?? 'gptq';
  if (method !== 'gptq') throw new CheckpointError(path, `quant_method ${JSON.stringify(method)}: qalc reads GPTQ checkpoints only`);
  const bits = q.bits;
  if (!SUPPORTED_BITS.includes(bits as Bits)) throw new CheckpointError(path, `"bits" must be one of ${SUPPORTED_BITS.join(', ')}, found ${JSON.stringify(bits)}`);
  const groupSize = q.group_size;
  if (!(groupSize === -1 || (typeof groupSize === 'number' && Number.isInteger(groupSize) && groupSize > 0))) {
    throw new CheckpointError(path, `"group_size" must be a positive integer or -1, found ${JSON.stringify(groupSize)}`);
  }
  const format = q.checkpoint_format ?? 'gptq';
  if (format !== 'gptq' && format !== 'gptq_v2') throw new CheckpointError(path, `checkpoint_format ${JSON.stringify(format)}: qalc reads "gptq" (v1) and "gptq_v2"`);
  let modules: string[] | undefined;
  if (q.modules_in_block_to_quantize !== undefined && q.modules_in_block_to_quantize !== null) {
    const listed = q.modules_in_block_to_quantize;
    if (!Array.isArray(listed) || !listed.every((m) => Array.isArray(m) ? m.every((n) => typeof n === 'string') : typeof m === 'string')) {
      throw new CheckpointError(path, '"modules_in_block_to_quantize" must be a list of lists of module names');
    }
    modules = (listed as (string | string[])[]).flat();
  }
  return {
    bits: bits as Bits, groupSize, actOrder: q.desc_act === true, symmetric: q.sym === true,
    checkpointFormat: format, ...(modules ? { modules } : {}), path,
  };
}

const SAME_IN_BOTH = ['bits', 'group_size', 'sym', 'desc_act', 'checkpoint_format'] as const;

/**
 * quantize_config.json (AutoGPTQ), or config.json's quantization_config (transformers); when a
 * directory has both they must agree, since a reader could pick either.
 */
export function readGptqQuantization(dir: string): GptqQuantization {
  const separate = join(dir, 'quantize_config.json');
  const inConfig = quantizationConfigOf(dir);
  if (!existsSync(separate)) {
    if (!inConfig) throw new CheckpointError(dir, 'not a GPTQ checkpoint: no quantize_config.json and no quantization_config in config.json');
    return parseGptqQuantization(inConfig, join(dir, 'config.json'));
  }
  const own = readJson(separate);
  if (inConfig) {
    for (const key of SAME_IN_BOTH) {
      if (inConfig[key] !== undefined && own[key] !== undefined && JSON.stringify(inConfig[key]) !== JSON.stringify(own[key])) {
        throw new CheckpointError(separate, `"${key}" is ${JSON.stringify(own[key])} here but ${JSON.stringify(inConfig[key])} in config.json's quantization_config: which one is the checkpoint's?`);
      }
    }
  }
  return parseGptqQuantization({ ...inConfig, ...own }, separate);
}
