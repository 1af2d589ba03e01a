// LLaMA's gated activation on CUDA, elementwise (src/runtime/typescript/swiglu.ts). Gate and up
// are the gate and up linears' outputs and out the down linear's input: the *Activation entry
// points take them in the activation type the linear kernels bind, so no conversion runs
// between (widened exactly on load, out rounded on store as the conversion would round it).
// backwardToActivation writes dGate and dUp (where the others add into them) in the activation
// type the gate and up linears' backward reads: into gradients the runtime knows hold zeros, it
// replaces two memsets and two conversions.
import type { ModelOpKernel } from '../model-ops.ts';
import { activationType, activationInput, activationOutput, ELEMENTWISE_THREADS, entryPoint, accumulated, input, output, u32, type ModelShapes } from './shapes.ts';

/** Elements a thread, every entry. */
export const SWIGLU_VECTOR = 4;

export function swigluKernel(shapes: ModelShapes): ModelOpKernel {
  const { activation } = shapes;
  const kernel = `swiglu_${activation}`;
  const type = activationType('swiglu', shapes);
  const input16 = (name: string, doc: string) => activationInput(type, name, doc);
  const output16 = (name: string, doc: string) => activationOutput(type, name, doc);
  const count = u32('count', 'elements (rows * hidden)');
  const block = [ELEMENTWISE_THREADS, 1, 1] as const;
  // Every entry takes SWIGLU_VECTOR consecutive elements a thread (vector loads).
  const grid = `grid.x = ceil(count / ${ELEMENTWISE_THREADS * SWIGLU_VECTOR})`;
  return {
    kernel, op: 'swiglu', template: 'ops/swiglu.cu.hbs',
    constants: { THREADS: ELEMENTWISE_THREADS, VECTOR: SWIGLU_VECTOR },
    entryPoints: [
      ...(['forward', 'forwardInActivation'] as const).map((name) => {
        const [write, read] = name === 'forward' ? [output, input] : [output16, input16];
        return entryPoint(kernel, name, {
          parameters: [write('out', '[count]'), read('gate', '[count]'), read('up', '[count]'), count], block, grid,
          computes: 'out = gate / (1 + exp(-gate)) * up',
        });
      }),
      ...(['backward', 'backwardFromActivation'] as const).map((name) => {
        const read = name === 'backward' ? input : input16;
        return entryPoint(kernel, name, {
          parameters: [accumulated('dGate', '[count]'), accumulated('dUp', '[count]'), input('dOut', '[count]'), read('gate', '[count]'), read('up', '[count]'), count], block, grid,
          computes: 's = sigmoid(gate): dGate += dOut * up * s * (1 + gate * (1 - s)), dUp += dOut * gate * s',
        });
      }),
      entryPoint(kernel, 'backwardToActivation', {
        parameters: [output16('dGate', '[count]'), output16('dUp', '[count]'), input('dOut', '[count]'), input16('gate', '[count]'), input16('up', '[count]'), count], block, grid,
        computes: 's = sigmoid(gate): dGate = dOut * up * s * (1 + gate * (1 - s)), dUp = dOut * gate * s',
      }),
    ],
  };
}
