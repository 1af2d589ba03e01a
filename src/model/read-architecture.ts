// One entry point for "what shape is this checkpoint?", whatever its format.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Architecture } from './architecture.ts';
import { quantizationConfigOf, readGptqQuantization, readHfArchitecture, type GptqQuantization } from './hf-config.ts';
import { CheckpointError, readLlama2cArchitecture } from './llama2c-header.ts';

export type CheckpointFormat = 'llama2c' | 'hf' | 'gptq';

export interface CheckpointShapes {
  readonly format: CheckpointFormat;
  readonly architecture: Architecture;
  /** Present for GPTQ checkpoints: their bits and groups are fixed by the file. */
  readonly gptq?: GptqQuantization;
}

/**
 * A directory with a quantization config (quantize_config.json, or quantization_config in
 * config.json) is GPTQ, another directory is Hugging Face, a file is llama2.c.
 */
export function inferCheckpointFormat(path: string): CheckpointFormat {
  if (!existsSync(path)) throw new CheckpointError(path, 'no such file or directory');
  if (!statSync(path).isDirectory()) return 'llama2c';
  if (existsSync(join(path, 'quantize_config.json'))) return 'gptq';
  const inConfig = quantizationConfigOf(path);
  if (!inConfig) return 'hf';
  // Another method's weights (AWQ, bitsandbytes, …) would fail later on their tensor names.
  if ((inConfig.quant_method ?? 'gptq') !== 'gptq') throw new CheckpointError(join(path, 'config.json'), `quantization_config.quant_method ${JSON.stringify(inConfig.quant_method)}: qalc reads unquantized Hugging Face models and GPTQ ones only`);
  return 'gptq';
}

export function readCheckpointShapes(path: string, format: CheckpointFormat = inferCheckpointFormat(path)): CheckpointShapes {
  switch (format) {
    case 'llama2c':
      return { format, architecture: readLlama2cArchitecture(path) };
    case 'hf':
      return { format, architecture: readHfArchitecture(path) };
    case 'gptq':
      return { format, architecture: readHfArchitecture(path), gptq: readGptqQuantization(path) };
  }
}
