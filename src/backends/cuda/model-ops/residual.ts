// The model's glue on CUDA, elementwise: the residual connection, zeroing a gradient before a
// backward accumulates into it, and adding a slice of a scratch buffer into a gradient (the
// linear kernels overwrite what they compute; the training ops accumulate). The addend of the
// residual connection is the o or down linear's output: addFromActivation reads it in the
// activation type the linear wrote (widened exactly), so no conversion runs.
import type { ModelOpKernel } from '../model-ops.ts';
import { activationType, activationInput, elementwiseGrid, ELEMENTWISE_THREADS, entryPoint, accumulated, input, output, u32, type ModelShapes } from './shapes.ts';

/** Elements a thread of the add entries. */
export const RESIDUAL_ADD_VECTOR = 4;

export function residualKernel(shapes: ModelShapes): ModelOpKernel {
  const { activation } = shapes;
  const kernel = `residual_${activation}`;
  const type = activationType('residual', shapes);
  const count = u32('count', 'elements');
  const block = [ELEMENTWISE_THREADS, 1, 1] as const;
  const grid = elementwiseGrid('count');
  // The adds take RESIDUAL_ADD_VECTOR consecutive elements a thread (vector loads).
  const addGrid = `grid.x = ceil(count / ${ELEMENTWISE_THREADS * RESIDUAL_ADD_VECTOR})`;
  return {
    kernel, op: 'residual', template: 'ops/residual.cu.hbs',
    constants: { THREADS: ELEMENTWISE_THREADS, ADD_VECTOR: RESIDUAL_ADD_VECTOR },
    entryPoints: [
      entryPoint(kernel, 'add', { parameters: [output('out', '[count] (neither a nor b)'), input('a', '[count]'), input('b', '[count]'), count], block, grid: addGrid, computes: 'out = a + b' }),
      entryPoint(kernel, 'addFromActivation', {
        parameters: [output('out', '[count] (not a)'), input('a', '[count]'), activationInput(type, 'b', '[count]'), count], block, grid: addGrid, computes: 'out = a + b',
      }),
      entryPoint(kernel, 'zero', { parameters: [output('x', '[count]'), count], block, grid, computes: 'x = 0' }),
      entryPoint(kernel, 'accumulate', {
        parameters: [accumulated('out', '[count]'), input('source', '[offset + count]'), u32('offset', 'elements of source before the slice'), count], block, grid,
        computes: 'out[i] += source[offset + i]',
      }),
    ],
  };
}
