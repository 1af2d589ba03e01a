// GPTQ at load time takes long next to RTN, and train, eval, merge and generate each load the
// model: the result is kept under ~/.cache/qalc/gptq (or $XDG_CACHE_HOME/qalc/gptq), named by a
// hash of everything it depends on — every weight of the checkpoint, each projection's
// quantizer, the calibration tokens, and this format's version. An entry that does not read
// back whole (a full disk, a killed copy, an edit) is said, ignored and rebuilt.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, writeSafetensorsAtomic, type NamedTensor } from '../export/safetensors.ts';
import type { Llama2cCheckpoint } from '../model/llama2c-checkpoint.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import type { Batch } from './qalora-model.ts';
import type { GptqRequest } from './gptq-model.ts';

const VERSION = 'qalc-gptq-cache-1';

function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'qalc', 'gptq');
}

export function gptqCacheKey(weights: Llama2cCheckpoint, request: GptqRequest, calibration: Batch): string {
  const hash = createHash('sha256').update(VERSION).update(JSON.stringify(request.layers)).update(JSON.stringify(weights.arch));
  for (const [name, t] of weights.tensors) hash.update(name).update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  const tokens = Int32Array.from(calibration.tokens);
  hash.update(`${calibration.batchSize}x${calibration.seqLen}`).update(new Uint8Array(tokens.buffer));
  return hash.digest('hex');
}

/** The cached layers, or undefined (with `notify` told why when an entry was there but unusable). */
export function readGptqCache(key: string, expected: readonly string[], notify: (line: string) => void): Map<string, QuantizedWeight> | undefined {
  const path = join(cacheDir(), `${key}.safetensors`);
  if (!existsSync(path)) return undefined;
  try {
    const file = readSafetensors(path);
    if (file.metadata.format !== VERSION) throw new Error(`format ${JSON.stringify(file.metadata.format)}`);
    const shapes = JSON.parse(file.metadata.layers ?? '{}') as Record<string, Omit<QuantizedWeight, 'q' | 'scales' | 'zeros'>>;
    const layers = new Map<string, QuantizedWeight>();
    for (const name of expected) {
      const shape = shapes[name];
      const [q, scales, zeros] = ['q', 'scales', 'zeros'].map((part) => file.tensors.get(`${name}.${part}`)?.data);
      if (!shape || !(q instanceof Uint8Array) || !(scales instanceof Float64Array) || !(zeros instanceof Float64Array)) throw new Error(`${name} is missing`);
      const groups = (shape.inFeatures / shape.groupSize) * shape.outFeatures;
      if (q.length !== shape.inFeatures * shape.outFeatures || scales.length !== groups || zeros.length !== groups) throw new Error(`${name} has the wrong size`);
      layers.set(name, { ...shape, q: q.slice(), scales: scales.slice(), zeros: zeros.slice() });
    }
    return layers;
  } catch (e) {
    notify(`the GPTQ cache entry ${path} is damaged (${(e as Error).message}): quantizing again`);
    return undefined;
  }
}

export function writeGptqCache(key: string, layers: ReadonlyMap<string, QuantizedWeight>): string | undefined {
  const dir = cacheDir();
  const tensors: NamedTensor[] = [];
  const shapes: Record<string, unknown> = {};
  for (const [name, w] of layers) {
    shapes[name] = { inFeatures: w.inFeatures, outFeatures: w.outFeatures, groupSize: w.groupSize, bits: w.bits };
    tensors.push({ name: `${name}.q`, shape: [w.inFeatures, w.outFeatures], data: w.q });
    tensors.push({ name: `${name}.scales`, shape: [w.scales.length], data: w.scales });
    tensors.push({ name: `${name}.zeros`, shape: [w.zeros.length], data: w.zeros });
  }
  try {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, `${key}.safetensors`);
    writeSafetensorsAtomic(path, tensors, { format: VERSION, layers: JSON.stringify(shapes) });
    return path;
  } catch {
    // A read-only home is no reason to fail a run: it only costs the next one time.
    return undefined;
  }
}
