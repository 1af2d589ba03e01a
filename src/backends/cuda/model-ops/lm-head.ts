// The output projection on CUDA (src/runtime/typescript/lm-head.ts): logits = x · Eᵀ with the
// frozen classifier E [vocab, C], and dx += dlogits · E. Both are float32 GEMMs with shared-
// memory tiles: a block computes a TILE x TILE tile of the result with 256 threads, each an
// 8 x 8 micro-tile in registers, stepping through the reduction TILE_K at a time (two shared
// stages: the next step's tiles load while this one's multiply, or one); the edges of ragged
// shapes load zeros and store nothing. Every output element is summed by one thread in a
// fixed order: deterministic.
import type { ModelOpKernel } from '../model-ops.ts';
import { entryPoint, accumulated, input, output, u32, type ModelShapes } from './shapes.ts';

export const LM_HEAD_TILE = 128;
export const LM_HEAD_TILE_K = 8;
export const LM_HEAD_MICRO = 8;
export const LM_HEAD_THREADS = (LM_HEAD_TILE / LM_HEAD_MICRO) ** 2;

/** Shared stages and the blocks a multiprocessor must fit (__launch_bounds__): what the device timings chose. */
export interface LmHeadTuning {
  readonly stages: 1 | 2;
  readonly minBlocks: 1 | 2;
}

export const LM_HEAD_TUNING: LmHeadTuning = { stages: 2, minBlocks: 1 };

export function lmHeadKernel(shapes: ModelShapes, tuning: LmHeadTuning = LM_HEAD_TUNING): ModelOpKernel {
  const { dim, vocab } = shapes;
  const kernel = `lm_head_c${dim}_v${vocab}_f32`;
  const block = [LM_HEAD_THREADS, 1, 1] as const;
  const rows = u32('rows', 'rows of x (batch * seqLen)');
  return {
    kernel, op: 'lm_head', template: 'ops/lm-head.cu.hbs',
    constants: { CHANNELS: dim, VOCAB: vocab, TILE: LM_HEAD_TILE, TILE_K: LM_HEAD_TILE_K, MICRO: LM_HEAD_MICRO, THREADS: LM_HEAD_THREADS, STAGES: tuning.stages, MIN_BLOCKS: tuning.minBlocks },
    entryPoints: [
      entryPoint(kernel, 'forward', {
        parameters: [output('logits', `[rows, ${vocab}]`), input('x', `[rows, ${dim}]`), input('classifier', `[${vocab}, ${dim}]`), rows],
        block, grid: `grid.x = ceil(${vocab} / ${LM_HEAD_TILE}), grid.y = ceil(rows / ${LM_HEAD_TILE})`,
        computes: `logits[r, v] = sum_c x[r, c] * classifier[v, c]`,
      }),
      entryPoint(kernel, 'backward', {
        parameters: [accumulated('dx', `[rows, ${dim}]`), input('dLogits', `[rows, ${vocab}]`), input('classifier', `[${vocab}, ${dim}]`), rows],
        block, grid: `grid.x = ceil(${dim} / ${LM_HEAD_TILE}), grid.y = ceil(rows / ${LM_HEAD_TILE})`,
        computes: `dx[r, c] += sum_v dLogits[r, v] * classifier[v, c]`,
      }),
    ],
  };
}
