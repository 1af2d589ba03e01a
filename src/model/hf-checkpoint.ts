// Reads a Hugging Face LLaMA directory (config.json and model.safetensors, or shards listed in
// model.safetensors.index.json) into qalc's weights: llama2.c names, [out, in] float32 matrices,
// q and k rows in llama2.c's interleaved RoPE order. Each tensor is read from its offset, so a
// shard is never held whole in memory; every shape is checked against config.json.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { headDim } from './architecture.ts';
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

export function readHfCheckpoint(dir: string): Llama2cCheckpoint {
  const arch = readHfArchitecture(dir);
  const shards = shardsOf(dir);
  const readers = new Map<string, SafetensorsReader>();
  const used = new Set<string>();
  const kvDim = headDim(arch) * arch.kvHeads;
  try {
    const read = (hfName: string, name: string, shape: number[]): Tensor => {
      const file = shards.get(hfName);
      if (!file) throw new CheckpointError(dir, `missing tensor ${hfName} (qalc's ${name})`);
      let reader = readers.get(file);
      if (!reader) readers.set(file, reader = openSafetensors(file));
      const entry = reader.entries.get(hfName);
      if (!entry) throw new CheckpointError(file, `missing tensor ${hfName}: the index lists it in this shard`);
      if (entry.shape.join() !== shape.join()) throw new CheckpointError(file, `tensor ${hfName} is [${entry.shape.join(', ')}], config.json makes it [${shape.join(', ')}]`);
      let data = reader.readFloat32(hfName);
      const bad = firstNonFinite(data);
      if (bad >= 0) throw new CheckpointError(file, `tensor ${hfName} [${shape.join(', ')}] holds ${data[bad]} at [${indexIn(shape, bad).join(', ')}]: the checkpoint is damaged`);
      if (name.endsWith('.wq')) data = unpermuteFromHf(data, arch.heads, arch.dim);
      if (name.endsWith('.wk')) data = unpermuteFromHf(data, arch.kvHeads, arch.dim);
      used.add(hfName);
      return { name, shape, data };
    };
    const tensors = new Map<string, Tensor>();
    const add = (t: Tensor) => { tensors.set(t.name, t); return t; };
    const tokenEmbedding = add(read('model.embed_tokens.weight', 'token_embedding', [arch.vocab, arch.dim]));
    const layers: LayerWeights[] = [];
    for (let l = 0; l < arch.layers; l++) {
      const p = `model.layers.${l}.`;
      const t = (hf: string, name: string, shape: number[]) => add(read(p + hf, `layers.${l}.${name}`, shape));
      const rmsAtt = t('input_layernorm.weight', 'rms_att', [arch.dim]);
      const wq = t('self_attn.q_proj.weight', 'wq', [arch.dim, arch.dim]);
      const wk = t('self_attn.k_proj.weight', 'wk', [kvDim, arch.dim]);
      const wv = t('self_attn.v_proj.weight', 'wv', [kvDim, arch.dim]);
      const wo = t('self_attn.o_proj.weight', 'wo', [arch.dim, arch.dim]);
      const rmsFfn = t('post_attention_layernorm.weight', 'rms_ffn', [arch.dim]);
      const w1 = t('mlp.gate_proj.weight', 'w1', [arch.hiddenDim, arch.dim]);
      const w2 = t('mlp.down_proj.weight', 'w2', [arch.dim, arch.hiddenDim]);
      const w3 = t('mlp.up_proj.weight', 'w3', [arch.hiddenDim, arch.dim]);
      layers.push({ rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, q: wq, k: wk, v: wv, o: wo, gate: w1, down: w2, up: w3 });
    }
    const rmsFinal = add(read('model.norm.weight', 'rms_final', [arch.dim]));
    // A tied model may still store lm_head (a copy of the embedding); it is not read.
    if (arch.tiedEmbeddings) used.add('lm_head.weight');
    const classifier = arch.tiedEmbeddings ? tokenEmbedding : add(read('lm_head.weight', 'wcls', [arch.vocab, arch.dim]));
    const extra = [...shards.keys()].filter((name) => !used.has(name) && !IGNORED.test(name));
    if (extra.length > 0) throw new CheckpointError(dir, `tensors a LLaMA model without biases does not have: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? `, … (${extra.length})` : ''}`);
    return { path: dir, arch, tokenEmbedding, layers, rmsFinal, classifier, tensors };
  } finally {
    for (const reader of readers.values()) reader.close();
  }
}
