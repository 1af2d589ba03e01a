// The train block's `recompute` as the model takes it: how many blocks, from the first, keep only
// their input in the forward and run it again before their backward. `blocks` is every block;
// a number is that many (the checker has bounded it by the model's layers). Which blocks are
// recomputed changes no memory (a recomputed block's arrays are one set however many share it)
// and no result, so the first ones are, as Megatron-LM's `recompute_method = block` does.
import type { SettingValue } from '../check/checked-spec.ts';

export function recomputedBlockCount(setting: SettingValue | undefined, layers: number): number {
  if (setting === undefined || setting === 'none') return 0;
  if (setting === 'blocks') return layers;
  if (typeof setting === 'number' && Number.isInteger(setting) && setting >= 0 && setting <= layers) return setting;
  throw new RangeError(`recompute = ${String(setting)}: expected none, blocks or a number of blocks from 0 to the model's ${layers}`);
}
