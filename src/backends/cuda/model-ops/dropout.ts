// Adapter dropout's multipliers on CUDA: the keep mask of one adapted layer's pooled input, as
// the per-entry factors its linear kernels' dropoutMultiplier binding reads (1/(1−p) kept, 0
// dropped), computed from the draws that describe it (src/runtime/typescript/dropout-draws.ts)
// instead of uploaded: entry i is draw offset + i of the step's counter-based generator (the
// host's createRng, src/reference/random.ts), kept iff its 32-bit hash z ≥ ceil(p·2^32), the
// threshold the host computes exactly — so the device's mask is the host's bit for bit. With
// threshold 0 and keptScale 1 it writes the ones of a forward without dropout.
import type { ModelOpKernel } from '../model-ops.ts';
import { elementwiseGrid, ELEMENTWISE_THREADS, entryPoint, f32, output, pointer, u32 } from './shapes.ts';

export function dropoutKernel(): ModelOpKernel {
  const kernel = 'dropout_f32';
  return {
    kernel, op: 'dropout', template: 'ops/dropout.cu.hbs',
    constants: { THREADS: ELEMENTWISE_THREADS },
    entryPoints: [
      entryPoint(kernel, 'multipliers', {
        parameters: [
          output('multiplier', '[count] (rows * groups of one layer)'),
          pointer('seedWord', 'const uint32_t*', 'uint32 [1]: the step\'s dropout seed (any value without dropout), read when the kernel runs, so that a CUDA graph of the backward replays with each step\'s seed'),
          u32('offset', 'draws of the sequence before this layer\'s first, mod 2^32'),
          u32('threshold', 'ceil(p * 2^32): a draw z is kept iff z >= threshold'),
          f32('keptScale', '1 / (1 - p) in float32, the multiplier of a kept entry'),
          u32('count', 'entries'),
        ],
        block: [ELEMENTWISE_THREADS, 1, 1], grid: elementwiseGrid('count'),
        computes: 'z = splitmix32(seedWord[0] + (offset + i + 1) * 0x9e3779b9 mod 2^32): multiplier[i] = z >= threshold ? keptScale : 0',
      }),
    ],
  };
}
