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
import type { ModelOpKernel } from '../model-ops.ts';
import { accumulated, activationType, entryPoint, f32, pointer, u32, type ModelShapes } from './shapes.ts';

export const UNPOOL_THREADS = 256;
/** dx columns one thread adds to: one float4 where a row's start is 16-byte aligned (columns % 4 == 0). */
export const UNPOOL_COLUMNS_PER_THREAD = 4;

export function unpoolKernel(shapes: ModelShapes): ModelOpKernel {
  const type = activationType('unpool', shapes);
  const kernel = `unpool_${shapes.activation}`;
  const perBlock = UNPOOL_THREADS * UNPOOL_COLUMNS_PER_THREAD;
  return {
    kernel, op: 'unpool', template: 'ops/unpool.cu.hbs',
    constants: { THREADS: UNPOOL_THREADS, COLUMNS_PER_THREAD: UNPOOL_COLUMNS_PER_THREAD },
    entryPoints: [
      entryPoint(kernel, 'accumulate', {
        parameters: [
          accumulated('inputGrad', '[rows, columns] (dx)'),
          pointer('pooledInputGrad', `const ${type.cType}*`, `${type.spelled} [rows, stride] (du, adapter_grad's pooledInputGrad), read`),
          f32('factor', 'c, the pooling factor: 1/g for mean pooling, 1 for sum'),
          u32('rows', 'rows (tokens)'),
          u32('columns', 'dx row width K (in_features)'),
          u32('groupSize', 'g: input i is in group floor(i / g); ceil(columns / g) <= stride'),
          u32('stride', 'du row stride in elements (>= its groups)'),
        ],
        block: [UNPOOL_THREADS, 1, 1],
        grid: `grid.x = rows, grid.y = ceil(columns / ${perBlock})`,
        computes: 'inputGrad[t, i] += factor * pooledInputGrad[t * stride + floor(i / groupSize)] for i < columns',
      }),
    ],
  };
}
