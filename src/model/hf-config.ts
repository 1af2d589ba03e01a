// Shapes from a Hugging Face model directory (`config.json`) and, for GPTQ checkpoints, the
// quantization they were made with (`quantize_config.json`, or `quantization_config` in
// config.json). Only these small JSON files are read: compiling never needs the weights.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Architecture } from './architecture.ts';
import { CheckpointError } from './llama2c-header.ts';

export interface GptqQuantization {
  readonly bits: number;
  readonly groupSize: number;
  readonly actOrder: boolean;
  readonly symmetric: boolean;
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

// qalc's kernels use LLaMA's rope_theta 10000 and rms_norm_eps 1e-5 (llama2.c's), so a config
// with others is refused here, where `check` sees it, rather than run with the wrong numbers.
const RUNTIME_ROPE_THETA = 10000;
const RUNTIME_RMS_NORM_EPS = 1e-5;

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
  const theta = config.rope_theta ?? parameters.rope_theta ?? RUNTIME_ROPE_THETA;
  if (theta !== RUNTIME_ROPE_THETA) throw new CheckpointError(path, `rope_theta ${JSON.stringify(theta)}: qalc's kernels use rope_theta ${RUNTIME_ROPE_THETA} so far`);
  const eps = config.rms_norm_eps ?? RUNTIME_RMS_NORM_EPS;
  if (eps !== RUNTIME_RMS_NORM_EPS) throw new CheckpointError(path, `rms_norm_eps ${JSON.stringify(eps)}: qalc's kernels use rms_norm_eps ${RUNTIME_RMS_NORM_EPS} so far`);
  for (const bias of ['attention_bias', 'mlp_bias']) {
    if (config[bias] === true) throw new CheckpointError(path, `${bias} = true: qalc runs LLaMA without biases`);
  }
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
  };
}

export function readGptqQuantization(dir: string): GptqQuantization {
  const separate = join(dir, 'quantize_config.json');
  const path = existsSync(separate) ? separate : join(dir, 'config.json');
  const json = existsSync(separate) ? readJson(separate) : readJson(path).quantization_config;
  if (json === undefined || json === null || typeof json !== 'object') {
    throw new CheckpointError(dir, 'not a GPTQ checkpoint: no quantize_config.json and no quantization_config in config.json');
  }
  const q = json as Json;
  return {
    bits: positiveInt(q, 'bits', path),
    groupSize: positiveInt(q, 'group_size', path),
    actOrder: q.desc_act === true,
    symmetric: q.sym === true,
  };
}
