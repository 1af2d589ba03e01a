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
// The draws are Marsaglia and Tsang's ziggurat over splitmix32 (ziggurat-normal.ts); runs
// before 2026-12-02 drew Box–Muller per element, and their checkpoints are refused by name
// (RANDOM_WEIGHTS_GENERATOR below), since the same seed now gives other weights.
//
// Cost: with `quantize` (what `qalc train` passes unless the plan uses GPTQ, whose calibration
// pass runs the float model), a quantized projection is drawn and quantized a row at a time and
// its floats are never held; what stays is the codes (a byte a weight), float64 scales and
// zeros, and the float32 embedding, lm_head and norms. LLaMA-2-7B's shape (INT4 g32, rank-64
// adapters everywhere), measured whole (test/bench/cpu/random-weights-setup.md): 10.2 GiB of
// host memory, 10.8 GiB with the QaLoraModel's adapters (was 27 GB of floats and the quantized
// model beside them), and 270 CPU seconds (was about 850, extrapolated: Box–Muller draws, then
// a float64 transposed copy of each projection for RTN), on this shared 2-core machine. The bundled `qalc` spreads the projections over worker threads
// (src/train/random-weights-parallel.ts; each tensor has its own stream, so the weights are the
// same): about 270 / cores seconds where the cores are free, not measured so here.
// On the cuda backend the host only draws (3.4 s a 7B block here, against 10.5 s for its RTN):
// each projection whole, as a checkpoint stores it (drawRandomMatrix, on the workers), quantized
// on the GPU by the compiled quantize kernels (src/runtime/cuda/device-quantize.ts).
import { headDim, type Architecture } from './architecture.ts';
import type { LayerWeights, Llama2cCheckpoint, Tensor } from './llama2c-checkpoint.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import { NormalStream } from './ziggurat-normal.ts';

/**
 * The generator's name, recorded in a run's checkpoint beside its seed: the seed rebuilds the
 * run's weights only through the same generator. Checkpoints without it were trained on the
 * first one (Box–Muller per element over splitmix32, before 2026-12-02), which no qalc since
 * draws: they are refused by name (checkpoint.ts), not silently given other weights.
 */
export const RANDOM_WEIGHTS_GENERATOR = 'ziggurat-splitmix32';

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
  new NormalStream(tensorSeed(seed, name)).fill(data, std);
  return { name, shape, data };
}

/** The llama2.c name of each projection's tensor: `layers.<l>.<name>`. */
export const RANDOM_TENSOR_NAMES = { q: 'wq', k: 'wk', v: 'wv', o: 'wo', gate: 'w1', up: 'w3', down: 'w2' } as const;

/**
 * The rows of one random [out, in] matrix in order, without the matrix: `row(o, into)` writes
 * row o (float32 values, as randomWeights holds them) into the first `inFeatures` entries of
 * `into`. Rows must be asked for as 0, 1, 2, …: they are the tensor's stream, read on.
 */
export function randomMatrixRows(seed: number, name: string, inFeatures: number): (o: number, into: Float64Array) => void {
  const stream = new NormalStream(tensorSeed(seed, name));
  const row = new Float32Array(inFeatures);
  let next = 0;
  return (o, into) => {
    if (o !== next) throw new Error(`${name}: row ${o} asked for, row ${next} is next (rows come in order)`);
    next++;
    stream.fill(row, RANDOM_WEIGHT_STD);
    into.set(row);
  };
}

/**
 * One random [out, in] matrix whole, as a checkpoint stores it, into `into` (its first out·in
 * floats): the same floats as randomMatrixRows' rows one after the other (one stream, read on).
 * For a device that quantizes the floats itself (the cuda backend: src/runtime/cuda/device-quantize.ts).
 */
export function drawRandomMatrix(seed: number, name: string, outFeatures: number, inFeatures: number, into: Float32Array): Float32Array {
  const matrix = into.subarray(0, outFeatures * inFeatures);
  new NormalStream(tensorSeed(seed, name)).fill(matrix, RANDOM_WEIGHT_STD);
  return matrix;
}

const ones = (name: string, n: number): Tensor => ({ name, shape: [n], data: new Float32Array(n).fill(1) });

export type RandomProjection = keyof typeof RANDOM_TENSOR_NAMES;

/**
 * Quantizes projection `p` of block `l` from its rows as they are drawn (randomMatrixRows), or
 * returns undefined to keep it in float32. A quantized projection's floats are never held.
 */
export type RandomProjectionQuantizer = (l: number, p: RandomProjection, outFeatures: number, inFeatures: number, rows: (o: number, into: Float64Array) => void) => QuantizedWeight | undefined;

/** Block `l`'s weights alone, as randomWeights would make them (`quantize`: see randomWeights). */
export function randomLayerWeights(arch: Architecture, seed: number, l: number, quantize?: RandomProjectionQuantizer, quantized?: Map<string, QuantizedWeight>): LayerWeights {
  const { dim, hiddenDim } = arch;
  const kvDim = headDim(arch) * arch.kvHeads;
  const matrix = (p: RandomProjection, out: number, inFeatures: number): Tensor => {
    const name = `layers.${l}.${RANDOM_TENSOR_NAMES[p]}`, shape = [out, inFeatures];
    const weight = quantize?.(l, p, out, inFeatures, randomMatrixRows(seed, name, inFeatures));
    if (weight === undefined) return normalTensor(seed, name, shape, RANDOM_WEIGHT_STD);
    quantized!.set(`layers.${l}.${p}`, weight);
    return { name, shape, data: new Float32Array(0) };
  };
  const wq = matrix('q', dim, dim), wk = matrix('k', kvDim, dim), wv = matrix('v', kvDim, dim), wo = matrix('o', dim, dim);
  const w1 = matrix('gate', hiddenDim, dim), w2 = matrix('down', dim, hiddenDim), w3 = matrix('up', hiddenDim, dim);
  return {
    rmsAtt: ones(`layers.${l}.rms_att`, dim), rmsFfn: ones(`layers.${l}.rms_ffn`, dim),
    wq, wk, wv, wo, w1, w2, w3, q: wq, k: wk, v: wv, o: wo, gate: w1, down: w2, up: w3,
  };
}

/**
 * The whole model, in float32, with `path` naming where it came from in messages. With
 * `quantize`, each projection it quantizes is made a row at a time and goes into `quantized`
 * (qalc's name, `layers.0.q`), its entry in `layers` keeping the shape and no data (length 0):
 * a 7B shape then never holds its 26 GB of projection floats, only the codes.
 */
export function randomWeights(arch: Architecture, seed: number, quantize?: RandomProjectionQuantizer): Llama2cCheckpoint {
  const tokenEmbedding = normalTensor(seed, 'token_embedding', [arch.vocab, arch.dim], RANDOM_WEIGHT_STD);
  const tensors = new Map<string, Tensor>([['token_embedding', tokenEmbedding]]);
  const quantized = new Map<string, QuantizedWeight>();
  const layers: LayerWeights[] = [];
  for (let l = 0; l < arch.layers; l++) {
    const layer = randomLayerWeights(arch, seed, l, quantize, quantized);
    for (const t of [layer.rmsAtt, layer.wq, layer.wk, layer.wv, layer.wo, layer.rmsFfn, layer.w1, layer.w2, layer.w3]) tensors.set(t.name, t);
    layers.push(layer);
  }
  const rmsFinal = ones('rms_final', arch.dim);
  tensors.set('rms_final', rmsFinal);
  const classifier = arch.tiedEmbeddings ? tokenEmbedding : normalTensor(seed, 'wcls', [arch.vocab, arch.dim], RANDOM_WEIGHT_STD);
  if (!arch.tiedEmbeddings) tensors.set('wcls', classifier);
  return { path: `random weights (seed ${seed})`, arch, tokenEmbedding, layers, rmsFinal, classifier, tensors, ...(quantize ? { quantized } : {}) };
}

/** Parameters randomWeights draws (4 bytes each when it holds them all, without `quantize`). */
export function randomWeightCount(arch: Architecture): number {
  const { dim, hiddenDim, vocab } = arch;
  const kvDim = headDim(arch) * arch.kvHeads;
  const block = 2 * dim + 2 * dim * dim + 2 * kvDim * dim + 3 * hiddenDim * dim;
  return vocab * dim * (arch.tiedEmbeddings ? 1 : 2) + arch.layers * block + dim;
}
