// The sum of squares of a gradient array on CUDA, for the global gradient norm that AdamW clips
// by: a fixed number of blocks each add a fixed strided share into a partial sum, then one block
// adds the partials, so the order of every addition is fixed by the array's length alone
// (deterministic, run to run and GPU to GPU). `finish` accumulates into its float, so the
// arrays of several parameters add up in call order; the runtime zeroes it first.
import type { ModelOpKernel } from '../model-ops.ts';
import { entryPoint, accumulated, input, output, u32 } from './shapes.ts';

export const SUM_SQUARES_BLOCKS = 256;
export const SUM_SQUARES_THREADS = 256;

export function sumSquaresKernel(): ModelOpKernel {
  const kernel = 'sum_squares_f32';
  const partials = (access: 'read' | 'written') => (access === 'read' ? input : output)('partials', `[${SUM_SQUARES_BLOCKS}] (scratch)`);
  return {
    kernel, op: 'sum_squares', template: 'ops/sum-squares.cu.hbs',
    constants: { BLOCKS: SUM_SQUARES_BLOCKS, THREADS: SUM_SQUARES_THREADS },
    entryPoints: [
      entryPoint(kernel, 'partials', {
        parameters: [partials('written'), input('x', '[count]'), u32('count', 'elements of x')],
        block: [SUM_SQUARES_THREADS, 1, 1], grid: `grid.x = ${SUM_SQUARES_BLOCKS} (fixed)`,
        computes: `partials[b] = sum_{i = (b * ${SUM_SQUARES_THREADS} + t) + k * ${SUM_SQUARES_BLOCKS * SUM_SQUARES_THREADS}} x[i]^2, a fixed tree over t`,
      }),
      entryPoint(kernel, 'finish', {
        parameters: [accumulated('sum', '[1]'), partials('read')],
        block: [SUM_SQUARES_BLOCKS, 1, 1], grid: 'grid.x = 1',
        computes: 'sum[0] += sum_b partials[b], a fixed tree (double inside)',
      }),
    ],
  };
}
