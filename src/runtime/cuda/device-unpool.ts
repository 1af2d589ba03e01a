// dx += c·unpool(du) on the GPU, by the unpool model op (src/backends/cuda/model-ops/unpool.ts):
// the pooled adapter's input gradient broadcast over each group of g inputs and added into the
// layer's float32 dx, for the quantized linear layers on dequantize + cuBLAS (gemm-linear.ts).
// The operands are the GEMM path's matrices (DeviceMatrix: du in adapter_grad's encoding and row
// stride), checked against what the kernel reads, so a layout it would misread is an error here.
import type { ModelOpLauncher } from './model-op-launcher.ts';
import type { DeviceMatrix } from './cuda.ts';

/** inputGrad [T, K] float32 dense += factor · pooledInputGrad[t, ⌊i / groupSize⌋]. */
export type UnpoolAccumulator = (inputGrad: DeviceMatrix, pooledInputGrad: DeviceMatrix, groupSize: number, factor: number) => void;

/** The accumulator over the compiled unpool op, or undefined when the kernels have none (compiled before it, or no layer needs it). */
export function deviceUnpool(ops: ModelOpLauncher): UnpoolAccumulator | undefined {
  if (!ops.has('unpool')) return undefined;
  const kernel = ops.kernel('unpool');
  return (dx, du, groupSize, factor) => {
    const where = `${kernel.kernel}: dx ${dx.rows}×${dx.columns} += unpool(du ${du.rows}×${du.columns}, group ${groupSize})`;
    if (dx.type !== 'f32' || (dx.ld ?? dx.columns) !== dx.columns) throw new Error(`${where}: dx must be dense float32, is ${dx.type} with rows of ${dx.ld}`);
    // The kernel's name is its activation type (unpool_bf16, unpool_f16), which adapter_grad writes du in.
    if (!kernel.kernel.endsWith(`_${du.type}`)) throw new Error(`${where}: du is ${du.type}`);
    if ((dx.offset ?? 0) !== 0 || (du.offset ?? 0) !== 0) throw new Error(`${where}: the kernel takes its operands from their buffers' starts`);
    if (!(Number.isInteger(groupSize) && groupSize > 0) || du.rows !== dx.rows || du.columns !== Math.ceil(dx.columns / groupSize)) {
      throw new Error(`${where}: du needs ${dx.rows} rows of ceil(${dx.columns} / ${groupSize}) groups`);
    }
    ops.launch('unpool', 'accumulate', {
      inputGrad: dx.buffer, pooledInputGrad: du.buffer, factor, rows: dx.rows, columns: dx.columns, groupSize, stride: du.ld ?? du.columns,
    });
  };
}
