// Test fixtures: a tiny random LLaMA checkpoint built in memory, and stories260K from the
// shared folder next to the repository.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Architecture } from '../../src/model/architecture.ts';
import { headDim } from '../../src/model/architecture.ts';
import type { LayerWeights, Tensor } from '../../src/model/llama2c-checkpoint.ts';
import { createRng } from '../../src/reference/random.ts';
import type { TrainableCheckpoint } from '../../src/train/qalora-model.ts';

export const sharedFile = (path: string) => fileURLToPath(new URL(`../../../shared/${path}`, import.meta.url));
export const STORIES260K = sharedFile('models/stories260K/stories260K.bin');
export const TOK512 = sharedFile('models/stories260K/tok512.bin');
export const TINY_SHAKESPEARE = sharedFile('data/tinyshakespeare.txt');

/** The first `chars` characters of tiny Shakespeare, written into `dir`: its path. */
export function shakespeareSlice(dir: string, chars: number): string {
  const path = join(dir, 'shakespeare.txt');
  writeFileSync(path, readFileSync(TINY_SHAKESPEARE, 'utf8').slice(0, chars));
  return path;
}

export const TINY_ARCH: Architecture = {
  dim: 8, hiddenDim: 12, layers: 2, heads: 2, kvHeads: 1, vocab: 11, context: 8, tiedEmbeddings: true, ropeTheta: 10000, rmsNormEps: 1e-5,
};

export function randomCheckpoint(arch: Architecture, seed: number): TrainableCheckpoint {
  const rng = createRng(seed);
  const tensor = (name: string, shape: number[], scale: number, offset = 0): Tensor => ({
    name, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => offset + scale * rng.normal()),
  });
  const { dim, hiddenDim } = arch;
  const kvDim = headDim(arch) * arch.kvHeads;
  const layers: LayerWeights[] = Array.from({ length: arch.layers }, (_, l) => {
    const t = (name: string, shape: number[], scale: number, offset = 0) => tensor(`layers.${l}.${name}`, shape, scale, offset);
    const wq = t('wq', [dim, dim], 0.4), wk = t('wk', [kvDim, dim], 0.4), wv = t('wv', [kvDim, dim], 0.4), wo = t('wo', [dim, dim], 0.4);
    const w1 = t('w1', [hiddenDim, dim], 0.4), w2 = t('w2', [dim, hiddenDim], 0.4), w3 = t('w3', [hiddenDim, dim], 0.4);
    return {
      rmsAtt: t('rms_att', [dim], 0.1, 1), rmsFfn: t('rms_ffn', [dim], 0.1, 1), wq, wk, wv, wo, w1, w2, w3,
      q: wq, k: wk, v: wv, o: wo, gate: w1, down: w2, up: w3,
    };
  });
  const tokenEmbedding = tensor('token_embedding', [arch.vocab, dim], 1);
  return { arch, tokenEmbedding, layers, rmsFinal: tensor('rms_final', [dim], 0.1, 1), classifier: tokenEmbedding };
}
