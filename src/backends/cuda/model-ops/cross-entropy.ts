// Softmax cross-entropy on CUDA (src/runtime/typescript/cross-entropy.ts). A row counts when its
// target is >= 0 and its mask byte is non-zero (no mask: a null pointer). The forward writes
// probs and a per-row loss (0 for a row that does not count); `loss` adds the rows up in a
// fixed order into [summed loss, counted rows] (the mean is their quotient, NaN for 0 rows);
// the backward reads the count from there, so no value goes through the host between them.
//
// The chunk entry points serve lm_head and the cross-entropy fused (src/runtime/typescript/
// lm-head-cross-entropy.ts): the runtime multiplies a chunk of rows on cuBLAS into a [rows, vocab]
// buffer and one of them turns it into the chunk's row losses and, for training, its gradient
// (softmax − onehot) · dLoss / #counted — the count known beforehand from the host's targets and
// mask — in place in float32 or rounded to the activation type (the operand of lm_head's bf16
// backward GEMM); `loss` then adds up the rows of every chunk.
import type { ModelOpKernel } from '../model-ops.ts';
import { activationOutput, activationType, entryPoint, f32, accumulated, input, output, pointer, u32, type ModelShapes } from './shapes.ts';

export const CROSS_ENTROPY_THREADS = 256;
export const CROSS_ENTROPY_LOSS_THREADS = 1024;

export function crossEntropyKernel(shapes: ModelShapes): ModelOpKernel {
  const { vocab } = shapes;
  const type = activationType('cross_entropy', shapes);
  const kernel = `cross_entropy_v${vocab}_${shapes.activation}`;
  const targetsOf = (shape: string) => pointer('targets', 'const int32_t*', `int32 ${shape}, read; < 0: not counted (PyTorch's ignore_index); >= ${vocab}: the row's loss is NaN (the host checks)`);
  const maskOf = (shape: string) => pointer('mask', 'const uint8_t*', `uint8 ${shape}, read: 0 = not counted; a null pointer: every row counts`);
  const [targets, mask] = [targetsOf('[rows]'), maskOf('[rows]')];
  // A chunk's entry points index the call's targets, mask and row losses from firstRow.
  const [callTargets, callMask] = [targetsOf('[firstRow + rows] (the call\'s)'), maskOf('[firstRow + rows] (the call\'s)')];
  const rows = u32('rows', 'batch * seqLen');
  const chunk = [u32('firstRow', 'the call\'s row that is row 0 of the chunk'), u32('rows', 'rows of the chunk')];
  const chunkRowLoss = output('rowLoss', '[firstRow + rows]: its rows firstRow … firstRow + rows − 1');
  const scale = f32('scale', 'dLoss / #counted rows of the whole call');
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
      entryPoint(kernel, 'chunkLoss', {
        parameters: [input('logits', `[rows, ${vocab}] (the chunk's)`), chunkRowLoss, callTargets, callMask, ...chunk],
        block: [CROSS_ENTROPY_THREADS, 1, 1], grid: 'grid.x = rows',
        computes: 'rowLoss[firstRow + r] = counted(firstRow + r) ? logsumexp(logits[r]) - logits[r, targets[firstRow + r]] : 0',
      }),
      entryPoint(kernel, 'chunkGradient', {
        parameters: [pointer('logits', 'float*', `float [rows, ${vocab}] (the chunk's), read, then overwritten by their gradient`), chunkRowLoss, callTargets, callMask, ...chunk, scale],
        block: [CROSS_ENTROPY_THREADS, 1, 1], grid: 'grid.x = rows',
        computes: 'rowLoss as chunkLoss; logits[r] = counted(firstRow + r) ? scale * (softmax(logits[r]) - onehot(targets[firstRow + r])) : 0',
      }),
      entryPoint(kernel, 'chunkGradientToActivation', {
        parameters: [activationOutput(type, 'dLogits', `[rows, ${vocab}]`), input('logits', `[rows, ${vocab}] (the chunk's)`), chunkRowLoss, callTargets, callMask, ...chunk, scale],
        block: [CROSS_ENTROPY_THREADS, 1, 1], grid: 'grid.x = rows',
        computes: 'rowLoss as chunkLoss; dLogits[r] = counted(firstRow + r) ? scale * (softmax(logits[r]) - onehot(targets[firstRow + r])) : 0',
      }),
    ],
  };
}
