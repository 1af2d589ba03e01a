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

export function readHfArchitecture(dir: string): Architecture {
  const path = join(dir, 'config.json');
  const config = readJson(path);
  const heads = positiveInt(config, 'num_attention_heads', path);
  return {
    dim: positiveInt(config, 'hidden_size', path),
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
