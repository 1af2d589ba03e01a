// Reads a Hugging Face LLaMA directory (config.json and model.safetensors, or shards listed in
// model.safetensors.index.json) into qalc's weights: llama2.c names, [out, in] float32 matrices,
// q and k rows in llama2.c's interleaved RoPE order. Each tensor is read from its offset, so a
// shard is never held whole in memory; every shape is checked against config.json.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { headDim, type Architecture } from './architecture.ts';
import { firstNonFinite, indexIn } from './finite.ts';
import { readHfArchitecture } from './hf-config.ts';
import { CheckpointError, type LayerWeights, type Llama2cCheckpoint, type Tensor } from './llama2c-checkpoint.ts';
import { unpermuteFromHf } from './rope-permutation.ts';
import { openSafetensors, type SafetensorsReader } from '../export/safetensors.ts';

/** Hugging Face tensor name → the shard file that holds it. */
function shardsOf(dir: string): Map<string, string> {
  const single = join(dir, 'model.safetensors');
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (existsSync(indexPath)) {
    let map: unknown;
    try {
      map = (JSON.parse(readFileSync(indexPath, 'utf8')) as { weight_map?: unknown }).weight_map;
    } catch (e) {
      throw new CheckpointError(indexPath, `not valid JSON: ${(e as Error).message}`);
    }
    if (map === null || typeof map !== 'object') throw new CheckpointError(indexPath, 'has no "weight_map" object');
    const shards = new Map<string, string>();
    for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
      if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) throw new CheckpointError(indexPath, `tensor ${name}: shard ${JSON.stringify(file)} is not a file name`);
      const path = join(dir, file);
      if (!existsSync(path)) throw new CheckpointError(indexPath, `tensor ${name} is in shard ${file}, which is missing from ${dir}`);
      shards.set(name, path);
    }
    return shards;
  }
  if (!existsSync(single)) throw new CheckpointError(dir, 'no model.safetensors and no model.safetensors.index.json (only safetensors weights are read)');
  const reader = openSafetensors(single);
  reader.close();
  return new Map([...reader.entries.keys()].map((name) => [name, single]));
}

/** Tensors a LLaMA checkpoint may carry that qalc recomputes instead. */
const IGNORED = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

/** The tensors of a Hugging Face directory, read one at a time by name; remembers which were read. */
export interface HfTensors {
  readonly dir: string;
  has(hfName: string): boolean;
  /** The stored shape, or undefined when the directory has no such tensor. */
  shapeOf(hfName: string): readonly number[] | undefined;
  /** The stored shape, checked against `shape`; float32, every value checked finite. */
  readFloat32(hfName: string, shape: readonly number[], what?: string): Float32Array;
  readInt32(hfName: string, shape: readonly number[]): Int32Array;
  /** The file that holds a tensor, for messages. */
  fileOf(hfName: string): string;
  /** Marks a tensor as accounted for without reading it. */
  skip(hfName: string): void;
  /** Tensors never read nor skipped: ones a LLaMA does not have. */
  unread(): string[];
  close(): void;
}

export function openHfTensors(dir: string): HfTensors {
  const shards = shardsOf(dir);
  const readers = new Map<string, SafetensorsReader>();
  const used = new Set<string>();
  const open = (hfName: string, shape: readonly number[], what: string) => {
    const file = shards.get(hfName);
    if (!file) throw new CheckpointError(dir, `missing tensor ${hfName}${what}`);
    let reader = readers.get(file);
    if (!reader) readers.set(file, reader = openSafetensors(file));
    const entry = reader.entries.get(hfName);
    if (!entry) throw new CheckpointError(file, `missing tensor ${hfName}: the index lists it in this shard`);
    if (entry.shape.join() !== shape.join()) throw new CheckpointError(file, `tensor ${hfName} is [${entry.shape.join(', ')}], config.json makes it [${shape.join(', ')}]`);
    used.add(hfName);
    return { file, reader };
  };
  return {
    dir,
    has: (hfName) => shards.has(hfName),
    shapeOf(hfName) {
      const file = shards.get(hfName);
      if (!file) return undefined;
      let reader = readers.get(file);
      if (!reader) readers.set(file, reader = openSafetensors(file));
      return reader.entries.get(hfName)?.shape;
    },
    readFloat32(hfName, shape, what = '') {
      const { file, reader } = open(hfName, shape, what);
      const data = reader.readFloat32(hfName);
      const bad = firstNonFinite(data);
      if (bad >= 0) throw new CheckpointError(file, `tensor ${hfName} [${shape.join(', ')}] holds ${data[bad]} at [${indexIn(shape, bad).join(', ')}]: the checkpoint is damaged`);
      return data;
    },
    readInt32(hfName, shape) {
      const { reader } = open(hfName, shape, '');
      return reader.readInt32(hfName);
    },
    fileOf: (hfName) => shards.get(hfName) ?? dir,
    skip: (hfName) => { used.add(hfName); },
    unread: () => [...shards.keys()].filter((name) => !used.has(name) && !IGNORED.test(name)),
    close: () => { for (const reader of readers.values()) reader.close(); },
  };
}

/** Reads one projection's [out, in] float32 weight, in llama2.c's rotary order for q and k. */
export type ProjectionReader = (tensors: HfTensors, hfPrefix: string, name: string, shape: [number, number]) => Float32Array;

/** A plain `<prefix>.weight`, q and k rows unpermuted from Hugging Face's rotary order. */
export function readDenseProjection(tensors: HfTensors, hfPrefix: string, name: string, shape: [number, number], arch: Architecture): Float32Array {
  if (!tensors.has(`${hfPrefix}.weight`) && tensors.has(`${hfPrefix}.qweight`)) {
    throw new CheckpointError(tensors.fileOf(`${hfPrefix}.qweight`), `tensor ${hfPrefix}.qweight is GPTQ-quantized, but ${tensors.dir} has no quantize_config.json and no quantization_config in config.json: its bits and group size are unknown`);
  }
  const data = tensors.readFloat32(`${hfPrefix}.weight`, shape, ` (qalc's ${name})`);
  if (name.endsWith('.wq')) return unpermuteFromHf(data, arch.heads, arch.dim);
  if (name.endsWith('.wk')) return unpermuteFromHf(data, arch.kvHeads, arch.dim);
  return data;
}

export function readHfCheckpoint(dir: string): Llama2cCheckpoint {
  const arch = readHfArchitecture(dir);
  return readHfLayout(dir, arch, (tensors, prefix, name, shape) => readDenseProjection(tensors, prefix, name, shape, arch));
}

/** The Hugging Face LLaMA layout: embeddings, norms and lm_head as floats, each projection through `readProjection`. */
export function readHfLayout(dir: string, arch: Architecture, readProjection: ProjectionReader): Llama2cCheckpoint {
  const files = openHfTensors(dir);
  const kvDim = headDim(arch) * arch.kvHeads;
  try {
    const tensors = new Map<string, Tensor>();
    const add = (t: Tensor) => { tensors.set(t.name, t); return t; };
    const vector = (hfName: string, name: string, shape: number[]) => add({ name, shape, data: files.readFloat32(hfName, shape, ` (qalc's ${name})`) });
    const tokenEmbedding = vector('model.embed_tokens.weight', 'token_embedding', [arch.vocab, arch.dim]);
    const layers: LayerWeights[] = [];
    for (let l = 0; l < arch.layers; l++) {
      const p = `model.layers.${l}.`;
      const projection = (hf: string, name: string, shape: [number, number]) => {
        const qalcName = `layers.${l}.${name}`;
        return add({ name: qalcName, shape, data: readProjection(files, p + hf, qalcName, shape) });
      };
      const rmsAtt = vector(`${p}input_layernorm.weight`, `layers.${l}.rms_att`, [arch.dim]);
      const wq = projection('self_attn.q_proj', 'wq', [arch.dim, arch.dim]);
      const wk = projection('self_attn.k_proj', 'wk', [kvDim, arch.dim]);
      const wv = projection('self_attn.v_proj', 'wv', [kvDim, arch.dim]);
      const wo = projection('self_attn.o_proj', 'wo', [arch.dim, arch.dim]);
      const rmsFfn = vector(`${p}post_attention_layernorm.weight`, `layers.${l}.rms_ffn`, [arch.dim]);
      const w1 = projection('mlp.gate_proj', 'w1', [arch.hiddenDim, arch.dim]);
      const w2 = projection('mlp.down_proj', 'w2', [arch.dim, arch.hiddenDim]);
      const w3 = projection('mlp.up_proj', 'w3', [arch.hiddenDim, arch.dim]);
      layers.push({ rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, q: wq, k: wk, v: wv, o: wo, gate: w1, down: w2, up: w3 });
    }
    const rmsFinal = vector('model.norm.weight', 'rms_final', [arch.dim]);
    // A tied model may still store lm_head (a copy of the embedding); it is not read.
    if (arch.tiedEmbeddings) files.skip('lm_head.weight');
    const classifier = arch.tiedEmbeddings ? tokenEmbedding : vector('lm_head.weight', 'wcls', [arch.vocab, arch.dim]);
    const extra = files.unread();
    if (extra.length > 0) throw new CheckpointError(dir, `tensors a LLaMA model without biases does not have: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? `, … (${extra.length})` : ''}`);
    return { path: dir, arch, tokenEmbedding, layers, rmsFinal, classifier, tensors };
  } finally {
    files.close();
  }
}
