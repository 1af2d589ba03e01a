// Seeded random weights for a model whose shapes are known but whose weights are not (a spec
// with a `preset` or a written-out architecture): `qalc train --random-weights`. The losses of
// such a run say nothing about a real model; the run exists to measure the shape (speed, memory,
// numerical health of a 7B-shaped step).
//
// Scales are LLaMA's initialisation (Meta's and Hugging Face's `initializer_range`): every
// projection, the token embedding and an untied lm_head are normal(0, 0.02); every RMSNorm
// weight is 1. Each tensor draws from its own stream, seeded by (seed, tensor name), so a tensor
// is the same whichever order or subset of the model is generated: one layer can be built
// alone (randomLayerWeights), and a resumed run or an eval rebuilds bit-identical weights.
//
// Cost: float32, 4 bytes a parameter. LLaMA-2-7B's shape is 6.7 G parameters, 27 GB of host
// memory, and the normal draws take about 7 minutes (13 s a block, measured on this 2-core
// machine). The generator makes one layer at a time (randomLayerWeights), but
// today's trainer takes the whole float model (setUpTraining returns it beside the QaLoraModel
// built from it, for merging), so a 7B-shaped run needs those 27 GB, and more, at once: the
// limit is the trainer's, not the generator's.
import { headDim, type Architecture } from './architecture.ts';
import type { LayerWeights, Llama2cCheckpoint, Tensor } from './llama2c-checkpoint.ts';
import { createRng } from '../reference/random.ts';

/** Standard deviation of every projection and embedding (LLaMA's initializer_range). */
export const RANDOM_WEIGHT_STD = 0.02;

/** A 32-bit seed for one tensor's stream: FNV-1a of the name, mixed with the run's seed. */
function tensorSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

function normalTensor(seed: number, name: string, shape: readonly number[], std: number): Tensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const rng = createRng(tensorSeed(seed, name));
  for (let i = 0; i < data.length; i++) data[i] = std * rng.normal();
  return { name, shape, data };
}

const ones = (name: string, n: number): Tensor => ({ name, shape: [n], data: new Float32Array(n).fill(1) });

/** Block `l`'s weights alone, as randomWeights would make them. */
export function randomLayerWeights(arch: Architecture, seed: number, l: number): LayerWeights {
  const { dim, hiddenDim } = arch;
  const kvDim = headDim(arch) * arch.kvHeads;
  const matrix = (name: string, out: number, inFeatures: number) => normalTensor(seed, `layers.${l}.${name}`, [out, inFeatures], RANDOM_WEIGHT_STD);
  const wq = matrix('wq', dim, dim), wk = matrix('wk', kvDim, dim), wv = matrix('wv', kvDim, dim), wo = matrix('wo', dim, dim);
  const w1 = matrix('w1', hiddenDim, dim), w2 = matrix('w2', dim, hiddenDim), w3 = matrix('w3', hiddenDim, dim);
  return {
    rmsAtt: ones(`layers.${l}.rms_att`, dim), rmsFfn: ones(`layers.${l}.rms_ffn`, dim),
    wq, wk, wv, wo, w1, w2, w3, q: wq, k: wk, v: wv, o: wo, gate: w1, down: w2, up: w3,
  };
}

/** The whole model, in float32, with `path` naming where it came from in messages. */
export function randomWeights(arch: Architecture, seed: number): Llama2cCheckpoint {
  const tokenEmbedding = normalTensor(seed, 'token_embedding', [arch.vocab, arch.dim], RANDOM_WEIGHT_STD);
  const tensors = new Map<string, Tensor>([['token_embedding', tokenEmbedding]]);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < arch.layers; l++) {
    const layer = randomLayerWeights(arch, seed, l);
    for (const t of [layer.rmsAtt, layer.wq, layer.wk, layer.wv, layer.wo, layer.rmsFfn, layer.w1, layer.w2, layer.w3]) tensors.set(t.name, t);
    layers.push(layer);
  }
  const rmsFinal = ones('rms_final', arch.dim);
  tensors.set('rms_final', rmsFinal);
  const classifier = arch.tiedEmbeddings ? tokenEmbedding : normalTensor(seed, 'wcls', [arch.vocab, arch.dim], RANDOM_WEIGHT_STD);
  if (!arch.tiedEmbeddings) tensors.set('wcls', classifier);
  return { path: `random weights (seed ${seed})`, arch, tokenEmbedding, layers, rmsFinal, classifier, tensors };
}

/** Float parameters randomWeights makes: the cost is 4 bytes each. */
export function randomWeightCount(arch: Architecture): number {
  const { dim, hiddenDim, vocab } = arch;
  const kvDim = headDim(arch) * arch.kvHeads;
  const block = 2 * dim + 2 * dim * dim + 2 * kvDim * dim + 3 * hiddenDim * dim;
  return vocab * dim * (arch.tiedEmbeddings ? 1 : 2) + arch.layers * block + dim;
}
