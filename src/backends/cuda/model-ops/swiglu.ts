// LLaMA's gated activation on CUDA, elementwise (src/runtime/typescript/swiglu.ts).
import type { ModelOpKernel } from '../model-ops.ts';
import { elementwiseGrid, ELEMENTWISE_THREADS, entryPoint, accumulated, input, output, u32 } from './shapes.ts';

export function swigluKernel(): ModelOpKernel {
  const kernel = 'swiglu_f32';
  const count = u32('count', 'elements (rows * hidden)');
  const block = [ELEMENTWISE_THREADS, 1, 1] as const;
  const grid = elementwiseGrid('count');
  return {
    kernel, op: 'swiglu', template: 'ops/swiglu.cu.hbs',
    constants: { THREADS: ELEMENTWISE_THREADS },
    entryPoints: [
      entryPoint(kernel, 'forward', {
        parameters: [output('out', '[count]'), input('gate', '[count]'), input('up', '[count]'), count], block, grid,
        computes: 'out = gate / (1 + exp(-gate)) * up',
      }),
      entryPoint(kernel, 'backward', {
        parameters: [accumulated('dGate', '[count]'), accumulated('dUp', '[count]'), input('dOut', '[count]'), input('gate', '[count]'), input('up', '[count]'), count], block, grid,
        computes: 's = sigmoid(gate): dGate += dOut * up * s * (1 + gate * (1 - s)), dUp += dOut * gate * s',
      }),
    ],
  };
}
