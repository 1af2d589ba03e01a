// dx += c·unpool(du) (or dx = c·unpool(du): overwrite, into known zeros) on the GPU, by the unpool model op (src/backends/cuda/model-ops/unpool.ts):
// the pooled adapter's input gradient broadcast over each group of g inputs and added into the
// layer's float32 dx, for the quantized linear layers on dequantize + cuBLAS (gemm-linear.ts).
// The operands are the GEMM path's matrices (DeviceMatrix: du in adapter_grad's encoding and row
// stride), checked against what the kernel reads, so a layout it would misread is an error here.
//
// With dropout, du is the gradient of drop(u): the accumulation applies the layer's mask (`mask`,
// regenerated in the kernel from its draws), and dropPooled writes drop(u) itself for dA.
import type { DropoutDraws } from '../typescript/dropout-draws.ts';
import type { ModelOpLauncher } from './model-op-launcher.ts';
import type { DeviceMatrix } from './cuda.ts';
import { dropoutArguments } from './device-dropout.ts';
import type { DropoutSeedWord } from './dropout-seed.ts';

/** A layer's dropout: its mask's draws (none: nothing dropped) and p. */
export interface UnpoolDropout {
  readonly mask: DropoutDraws | undefined;
  readonly p: number;
}

/** inputGrad [T, K] float32 dense += factor · m(t, g) · pooledInputGrad[t, g], g = ⌊i / groupSize⌋, m the dropout multiplier (1 without dropout). */
export type UnpoolAccumulator = (inputGrad: DeviceMatrix, pooledInputGrad: DeviceMatrix, groupSize: number, factor: number, dropout?: UnpoolDropout) => void;

/** dropped [T, L] (dense, the activation type) = m(t, g) · pooledInput[t, g]. */
export type PooledDropper = (dropped: DeviceMatrix, pooledInput: DeviceMatrix, dropout: UnpoolDropout) => void;

export interface DeviceUnpool {
  readonly accumulate: UnpoolAccumulator;
  /** inputGrad = factor · m · unpool(pooledInputGrad), every element written (accumulate's arguments); undefined where the kernels have no overwrite entry. */
  readonly overwrite: UnpoolAccumulator | undefined;
  readonly dropPooled: PooledDropper;
}

/** The unpool op's entries, or undefined when the kernels have none (compiled before it or before dropPooled, or no layer needs it). */
export function deviceUnpool(ops: ModelOpLauncher, seed: DropoutSeedWord): DeviceUnpool | undefined {
  if (!ops.has('unpool') || !ops.hasEntry('unpool', 'dropPooled')) return undefined;
  const kernel = ops.kernel('unpool');
  const dropPooled: PooledDropper = (dropped, u, dropout) => {
    const where = `${kernel.kernel}: drop(u ${u.rows}×${u.columns}) into ${dropped.rows}×${dropped.columns}`;
    if (!kernel.kernel.endsWith(`_${u.type}`) || dropped.type !== u.type) throw new Error(`${where}: u is ${u.type}, the output ${dropped.type}`);
    if ((dropped.ld ?? dropped.columns) !== dropped.columns || dropped.rows !== u.rows || dropped.columns !== u.columns) throw new Error(`${where}: the output must be dense and u's shape`);
    if ((dropped.offset ?? 0) !== 0 || (u.offset ?? 0) !== 0) throw new Error(`${where}: the kernel takes its operands from their buffers' starts`);
    ops.launch('unpool', 'dropPooled', {
      dropped: dropped.buffer, pooledInput: u.buffer, rows: u.rows, groups: u.columns, stride: u.ld ?? u.columns, ...seed.launchArguments(dropoutArguments(dropout.mask, dropout.p)),
    });
  };
  const unpoolInto = (entry: 'accumulate' | 'overwrite'): UnpoolAccumulator => (dx, du, groupSize, factor, dropout) => {
    const where = `${kernel.kernel}: dx ${dx.rows}×${dx.columns} += unpool(du ${du.rows}×${du.columns}, group ${groupSize})`;
    if (dx.type !== 'f32' || (dx.ld ?? dx.columns) !== dx.columns) throw new Error(`${where}: dx must be dense float32, is ${dx.type} with rows of ${dx.ld}`);
    // The kernel's name is its activation type (unpool_bf16, unpool_f16), which adapter_grad writes du in.
    if (!kernel.kernel.endsWith(`_${du.type}`)) throw new Error(`${where}: du is ${du.type}`);
    if ((dx.offset ?? 0) !== 0 || (du.offset ?? 0) !== 0) throw new Error(`${where}: the kernel takes its operands from their buffers' starts`);
    if (!(Number.isInteger(groupSize) && groupSize > 0) || du.rows !== dx.rows || du.columns !== Math.ceil(dx.columns / groupSize)) {
      throw new Error(`${where}: du needs ${dx.rows} rows of ceil(${dx.columns} / ${groupSize}) groups`);
    }
    ops.launch('unpool', entry, {
      inputGrad: dx.buffer, pooledInputGrad: du.buffer, factor, rows: dx.rows, columns: dx.columns, groupSize, stride: du.ld ?? du.columns,
      ...seed.launchArguments(dropoutArguments(dropout?.mask, dropout?.p ?? 0)),
    });
  };
  return { accumulate: unpoolInto('accumulate'), overwrite: ops.hasEntry('unpool', 'overwrite') ? unpoolInto('overwrite') : undefined, dropPooled };
}
