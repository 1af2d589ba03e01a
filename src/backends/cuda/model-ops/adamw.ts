// One AdamW step on CUDA over a flat parameter array, as src/train/adamw.ts computes it:
// clipping by the global gradient norm (from sum_squares' float, on the device: no round trip),
// decoupled weight decay, bias-corrected moments. The moments are float32 here (the TypeScript
// optimizer keeps float64); the bias corrections 1 - beta^step are computed in double.
import type { ModelOpKernel } from '../model-ops.ts';
import { elementwiseGrid, ELEMENTWISE_THREADS, entryPoint, f32, input, output, pointer, u32 } from './shapes.ts';

export function adamwKernel(): ModelOpKernel {
  const kernel = 'adamw_f32';
  return {
    kernel, op: 'adamw', template: 'ops/adamw.cu.hbs',
    constants: { THREADS: ELEMENTWISE_THREADS },
    entryPoints: [
      entryPoint(kernel, 'step', {
        parameters: [
          output('value', '[count] (updated)'), input('grad', '[count]'), output('m', '[count] (first moment, updated)'), output('v', '[count] (second moment, updated)'),
          pointer('sumSquares', 'const float*', 'float [1], read: the squared global gradient norm; a null pointer: no clipping'),
          u32('count', 'elements'), f32('lr', 'this step\'s learning rate'), f32('beta1', 'first-moment decay'), f32('beta2', 'second-moment decay'),
          f32('eps', 'added to the root of the second moment'), f32('weightDecay', 'decoupled weight decay'),
          f32('maxGradNorm', 'clip the global norm to this (with sumSquares)'), u32('step', '1-based index of this update (bias correction)'),
        ],
        block: [ELEMENTWISE_THREADS, 1, 1], grid: elementwiseGrid('count'),
        computes: 'g = grad * min(1, maxGradNorm / (sqrt(sumSquares) + 1e-6)); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; ' +
          'value = value (1 - lr wd) - lr (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps)',
      }),
    ],
  };
}
