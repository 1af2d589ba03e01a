// The train block's `recompute` as the model takes it. `blocks` and a number: how many blocks,
// from the first, keep only their input in the forward and run it again before their backward
// (`blocks` is every block; the checker has bounded a number by the model's layers). Which blocks
// are recomputed changes no memory (a recomputed block's arrays are one set however many share it)
// and no result, so the first ones are, as Megatron-LM's `recompute_method = block` does.
// `mlp`: every block keeps its MLP norm's output instead of the gate and up projections' (4096
// against 2 × 11008 values a row at the LLaMA-2-7B shape) and runs those two linears again before
// its backward — Megatron-LM's selective recomputation, where the costly part of a block is cheap
// to recompute for the memory it holds. `projections`: that, and also the attention norm's output
// instead of q, k and v (4096 against 3 × 4096 values a row), running q, k, v and RoPE again
// before the attention backward; attention's own outputs (O and its log-sum-exp) stay kept, so the
// flash attention forward does not run twice.
import type { SettingValue } from '../check/checked-spec.ts';

export interface Recomputation {
  /** Blocks 0 … blocks − 1 are recomputed whole. */
  readonly blocks: number;
  /** The gate and up projections of every other block are recomputed from the kept normed input. */
  readonly mlp: boolean;
  /** q, k and v (after RoPE) of every other block are recomputed from the kept normed attention input. */
  readonly qkv: boolean;
}

export function recomputationOf(setting: SettingValue | undefined, layers: number): Recomputation {
  if (setting === 'mlp') return { blocks: 0, mlp: true, qkv: false };
  if (setting === 'projections') return { blocks: 0, mlp: true, qkv: true };
  return { blocks: recomputedBlockCount(setting, layers), mlp: false, qkv: false };
}

export function recomputedBlockCount(setting: SettingValue | undefined, layers: number): number {
  if (setting === undefined || setting === 'none' || setting === 'mlp' || setting === 'projections') return 0;
  if (setting === 'blocks') return layers;
  if (typeof setting === 'number' && Number.isInteger(setting) && setting >= 0 && setting <= layers) return setting;
  throw new RangeError(`recompute = ${String(setting)}: expected none, blocks, mlp, projections or a number of blocks from 0 to the model's ${layers}`);
}
