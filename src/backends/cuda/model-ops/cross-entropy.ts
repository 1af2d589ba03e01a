// Softmax cross-entropy on CUDA (src/runtime/typescript/cross-entropy.ts). A row counts when its
// target is >= 0 and its mask byte is non-zero (no mask: a null pointer). The forward writes
// probs and a per-row loss (0 for a row that does not count); `loss` adds the rows up in a
// fixed order into [summed loss, counted rows] (the mean is their quotient, NaN for 0 rows);
// the backward reads the count from there, so no value goes through the host between them.
import type { ModelOpKernel } from '../model-ops.ts';
import { entryPoint, f32, accumulated, input, output, pointer, u32, type ModelShapes } from './shapes.ts';

export const CROSS_ENTROPY_THREADS = 256;
export const CROSS_ENTROPY_LOSS_THREADS = 1024;

export function crossEntropyKernel(shapes: ModelShapes): ModelOpKernel {
  const { vocab } = shapes;
  const kernel = `cross_entropy_v${vocab}_f32`;
  const targets = pointer('targets', 'const int32_t*', `int32 [rows], read; < 0: not counted (PyTorch's ignore_index); >= ${vocab}: the row's loss is NaN (the host checks)`);
  const mask = pointer('mask', 'const uint8_t*', 'uint8 [rows], read: 0 = not counted; a null pointer: every row counts');
  const rows = u32('rows', 'batch * seqLen');
  const lossAndCount = (access: string) => pointer('lossAndCount', access === 'read' ? 'const float*' : 'float*', `float [2], ${access}: the summed loss of the counted rows, then their count`);
  return {
    kernel, op: 'cross_entropy', template: 'ops/cross-entropy.cu.hbs',
    constants: { VOCAB: vocab, THREADS: CROSS_ENTROPY_THREADS, LOSS_THREADS: CROSS_ENTROPY_LOSS_THREADS },
    entryPoints: [
      entryPoint(kernel, 'forward', {
        parameters: [output('probs', `[rows, ${vocab}]`), output('rowLoss', '[rows]'), input('logits', `[rows, ${vocab}]`), targets, mask, rows],
        block: [CROSS_ENTROPY_THREADS, 1, 1], grid: 'grid.x = rows',
        computes: 'probs[r] = softmax(logits[r]); rowLoss[r] = counted(r) ? logsumexp(logits[r]) - logits[r, targets[r]] : 0',
      }),
      entryPoint(kernel, 'loss', {
        parameters: [lossAndCount('written'), input('rowLoss', '[rows]'), targets, mask, rows],
        block: [CROSS_ENTROPY_LOSS_THREADS, 1, 1], grid: 'grid.x = 1',
        computes: 'lossAndCount = [sum_{r counted} rowLoss[r], #counted], summed in a fixed order (double inside)',
      }),
      entryPoint(kernel, 'backward', {
        parameters: [accumulated('dLogits', `[rows, ${vocab}]`), input('probs', `[rows, ${vocab}]`), targets, mask, lossAndCount('read'), rows, f32('dLoss', 'the gradient of the mean loss (1 for the loss itself)')],
        block: [CROSS_ENTROPY_THREADS, 1, 1], grid: `grid.x = rows, grid.y = ceil(${vocab} / ${CROSS_ENTROPY_THREADS})`,
        computes: 'for counted r: dLogits[r, v] += dLoss / #counted * (probs[r, v] - (v == targets[r]))',
      }),
    ],
  };
}
