// RMSNorm on CUDA (src/runtime/typescript/rmsnorm.ts), one warp per row: each lane sums a
// fixed stride of the row, then a butterfly of shuffles adds the 32 partial sums in a fixed
// order, so the result does not depend on scheduling. The forward writes float32, or the
// activation type where its output feeds the linear kernels (forwardToActivation: rounded as the
// conversion to their binding would round it, so no conversion runs). backwardOverwrite writes dx
// where backward adds into it: the final norm's dx, the residual stream's first gradient, into an
// array the runtime knows holds zeros (no memset first). The KeepingInput forwards also write
// x, rounded to the activation type, into `kept`: what the backward's FromActivation entries
// read in place of the float32 residual stream, so a training step keeps each block's residual
// stream for its backward in half the bytes (the forward still adds in float32).
// forwardToActivationFewRows is forwardToActivation with a block a row, for a decode step's few
// rows (up to RMSNORM_FEW_ROWS): one warp a row there left the GPU idle, 17 µs a row on the H200.
import type { ModelOpKernel } from '../model-ops.ts';
import { activationType, activationInput, activationOutput, entryPoint, accumulated, input, output, u32, type ModelShapes } from './shapes.ts';

/** Warps (rows) per block. */
export const RMSNORM_ROWS_PER_BLOCK = 4;
/**
 * Up to this many rows (a decode step's), forwardToActivationFewRows takes a block a row: at one
 * warp a row a few rows leave the GPU idle and each row's loads wait on each other.
 */
export const RMSNORM_FEW_ROWS = 64;

export function rmsnormKernel(shapes: ModelShapes): ModelOpKernel {
  const { dim, rmsNormEps, activation } = shapes;
  const kernel = `rmsnorm_c${dim}_${activation}`;
  const type = activationType('rmsnorm', shapes);
  const rows = `[rows, ${dim}]`;
  const grid = `grid.x = ceil(rows / ${RMSNORM_ROWS_PER_BLOCK})`;
  const block = [32, RMSNORM_ROWS_PER_BLOCK, 1] as const;
  return {
    kernel, op: 'rmsnorm', template: 'ops/rmsnorm.cu.hbs',
    constants: { CHANNELS: dim, EPS: rmsNormEps, ROWS_PER_BLOCK: RMSNORM_ROWS_PER_BLOCK },
    entryPoints: [
      ...([['forward', false, false], ['forwardToActivation', true, false], ['forwardKeepingInput', false, true], ['forwardToActivationKeepingInput', true, true]] as const).map(([name, toActivation, keeping]) => entryPoint(kernel, name, {
        parameters: [
          toActivation ? activationOutput(type, 'out', rows) : output('out', rows), output('rstd', '[rows]'),
          ...(keeping ? [activationOutput(type, 'kept', `${rows}: x, for the backward`)] : []),
          input('x', rows), input('weight', `[${dim}]`), u32('rows', 'rows of x'),
        ],
        block, grid,
        computes: `rstd[r] = 1 / sqrt(mean_j x[r, j]^2 + ${rmsNormEps}); out[r, j] = weight[j] * (rstd[r] * x[r, j])${keeping ? '; kept[r, j] = x[r, j]' : ''}`,
      })),
      ...([['backward', false, false], ['backwardOverwrite', true, false], ['backwardFromActivation', false, true], ['backwardOverwriteFromActivation', true, true]] as const).map(([name, overwrite, fromActivation]) => entryPoint(kernel, name, {
        parameters: [
          (overwrite ? output : accumulated)('dx', rows), input('dy', rows),
          fromActivation ? activationInput(type, 'x', `${rows} (the forward's kept input)`) : input('x', rows),
          input('weight', `[${dim}]`), input('rstd', '[rows] (the forward\'s)'), u32('rows', 'rows of x'),
        ],
        block, grid,
        computes: `dx[r, j] ${overwrite ? '=' : '+='} rstd[r] * weight[j] * dy[r, j] - x[r, j] * rstd[r]^3 / ${dim} * sum_k dy[r, k] * weight[k] * x[r, k]`,
      })),
      entryPoint(kernel, 'forwardToActivationFewRows', {
        parameters: [
          activationOutput(type, 'out', rows), output('rstd', '[rows]'), input('x', rows), input('weight', `[${dim}]`), u32('rows', `rows of x (up to ${RMSNORM_FEW_ROWS}: a decode step's)`),
        ],
        block, grid: 'grid.x = rows',
        computes: `forwardToActivation's, a block a row: rstd[r] = 1 / sqrt(mean_j x[r, j]^2 + ${rmsNormEps}); out[r, j] = weight[j] * (rstd[r] * x[r, j])`,
      }),
    ],
  };
}
