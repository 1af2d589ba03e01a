// The pooled adapter's input gradient, unpooled into dx on CUDA: dx[t, i] += c · du[t, ⌊i/g⌋]
// (src/reference/pooling.ts unpoolGroups, added), for the quantized linear layers on dequantize +
// cuBLAS (src/runtime/cuda/gemm-linear.ts). It replaces a GEMM against a [L, K] 0/1 group matrix
// that cuBLAS ran at ~7 % of HBM bandwidth (0.64 ms for K = 11008, L = 344, T = 2048 on the H200,
// where the broadcast add moves ~180 MB, ≈ 45 µs) and the matrix itself.
//
// du is what adapter_grad writes (the linear kernels' 16-bit activation type, rows of `stride`
// elements); dx is the layer's dense float32 [rows, columns]. Widths, the group size and the
// factor are launch scalars, as convert's widths are: one file serves every layer (K = 4096 and
// 11008 of one spec, a per-layer group override, ragged groups such as 172 = 4 · 43, a padded
// in_features whose last group is short). Emitted only for a plan with a layer that can take that
// path (a quantized base with a dequantize kernel and an adapter).
//
// With adapter dropout, du = dv·Aᵀ arrives as the gradient of drop(u) (cuBLAS computes it), and
// accumulate applies the layer's mask itself, regenerated from its draws as the dropout op
// computes it (threshold 0, keptScale 1: none); dropPooled writes drop(u) in the activation type
// for dA = drop(u)ᵀ·dv on cuBLAS. adapter_grad's own entry, which computed du and dA in one
// launch, reduced dA over the tokens in 4 blocks (~55 µs a layer at T = 2048 on the H200).
//
// overwrite is accumulate writing dx instead of adding into it: the layer's first dx term where the
// runtime knows dx holds zeros (then the base GEMM adds dy·Ŵᵀ with beta = 1), so no memset runs.
import type { ModelOpKernel } from '../model-ops.ts';
import { accumulated, activationType, elementwiseGrid, entryPoint, f32, output, pointer, u32, type ModelShapes } from './shapes.ts';

export const UNPOOL_THREADS = 256;
/** dx columns one thread adds to: one float4 where a row's start is 16-byte aligned (columns % 4 == 0). */
export const UNPOOL_COLUMNS_PER_THREAD = 4;

/** The layer's dropout mask, as the dropout op takes it: entry j's multiplier m(j) = hash(seedWord[0], offset + j) >= threshold ? keptScale : 0. */
const maskParameters = [
  pointer('seedWord', 'const uint32_t*', 'uint32 [1]: the step\'s dropout seed (any value without dropout), read when the kernel runs, so that a CUDA graph of the backward replays with each step\'s seed'),
  u32('offset', 'draws of the sequence before this layer\'s first, mod 2^32'),
  u32('threshold', 'ceil(p * 2^32), 0 without dropout: an entry is kept iff its hash >= threshold'),
  f32('keptScale', '1 / (1 - p) in float32 (1 without dropout), the multiplier of a kept entry'),
];

export function unpoolKernel(shapes: ModelShapes): ModelOpKernel {
  const type = activationType('unpool', shapes);
  const kernel = `unpool_${shapes.activation}`;
  const perBlock = UNPOOL_THREADS * UNPOOL_COLUMNS_PER_THREAD;
  return {
    kernel, op: 'unpool', template: 'ops/unpool.cu.hbs',
    constants: { THREADS: UNPOOL_THREADS, COLUMNS_PER_THREAD: UNPOOL_COLUMNS_PER_THREAD },
    entryPoints: [
      ...(['accumulate', 'overwrite'] as const).map((name) => entryPoint(kernel, name, {
        parameters: [
          (name === 'accumulate' ? accumulated : output)('inputGrad', '[rows, columns] (dx)'),
          pointer('pooledInputGrad', `const ${type.cType}*`, `${type.spelled} [rows, stride] (du, adapter_grad's pooledInputGrad), read`),
          f32('factor', 'c, the pooling factor: 1/g for mean pooling, 1 for sum'),
          u32('rows', 'rows (tokens)'),
          u32('columns', 'dx row width K (in_features)'),
          u32('groupSize', 'g: input i is in group floor(i / g); ceil(columns / g) <= stride'),
          u32('stride', 'du row stride in elements (>= its groups)'),
          ...maskParameters,
        ],
        block: [UNPOOL_THREADS, 1, 1],
        grid: `grid.x = rows, grid.y = ceil(columns / ${perBlock})`,
        computes: `inputGrad[t, i] ${name === 'accumulate' ? '+=' : '='} factor * (m(t * groups + g) * pooledInputGrad[t * stride + g]), g = floor(i / groupSize), groups = ceil(columns / groupSize), for i < columns; m = the dropout multiplier`,
      })),
      entryPoint(kernel, 'dropPooled', {
        parameters: [
          pointer('dropped', `${type.cType}*`, `${type.spelled} [rows, groups] drop(u), written (rounded to nearest even)`),
          pointer('pooledInput', `const ${type.cType}*`, `${type.spelled} [rows, stride] (u, as the forward saved it), read`),
          u32('rows', 'rows (tokens)'),
          u32('groups', 'u row width (the layer\'s groups)'),
          u32('stride', 'u row stride in elements (>= groups)'),
          ...maskParameters,
        ],
        block: [UNPOOL_THREADS, 1, 1],
        grid: `grid.x = ceil(rows * groups / ${UNPOOL_THREADS})`,
        computes: 'dropped[t * groups + g] = m(t * groups + g) * pooledInput[t * stride + g]; m = the dropout multiplier',
      }),
    ],
  };
}
