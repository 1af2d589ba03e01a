// Adapter dropout's multipliers computed on the GPU by the dropout model op
// (src/backends/cuda/model-ops/dropout.ts) from a layer's draws, instead of expanded on the host
// and uploaded (at a LLaMA-7B step: 224 masks of 262,144 draws, and 2 × 235 MB of copies). The
// kernel's arguments (the seed in a device word: dropout-seed.ts) are what makes it agree with the host's expansion bit for bit: the seed, the
// offset mod 2^32 (the host's state wraps the same way), the integer threshold ceil(p·2^32) and
// 1/(1−p) rounded to float32. Regenerated for the backward rather than kept from the forward:
// one small launch (rows × groups floats) instead of a buffer per adapted layer held across the
// step (235 MB at the 7B shape).
import { dropoutThreshold, keptScale, offsetBase, type DropoutDraws } from '../typescript/dropout-draws.ts';
import type { DeviceBuffer } from './cuda.ts';
import type { DropoutSeedWord } from './dropout-seed.ts';
import type { ModelOpLauncher } from './model-op-launcher.ts';

/** Writes `count` float32 multipliers for `mask` (ones without one) into `out`, on the device. */
export type DropoutGenerator = (out: DeviceBuffer, mask: DropoutDraws | undefined, p: number, count: number) => void;

/** A mask as the kernels that regenerate it take it (the dropout op, unpool's entries): no mask keeps every entry with factor 1. */
export interface DropoutArguments {
  readonly seed: number;
  readonly offset: number;
  readonly threshold: number;
  readonly keptScale: number;
}

export function dropoutArguments(mask: DropoutDraws | undefined, p: number): DropoutArguments {
  if (mask === undefined) return { seed: 0, offset: 0, threshold: 0, keptScale: 1 };
  return { seed: mask.seed, offset: offsetBase(mask), threshold: dropoutThreshold(p), keptScale: keptScale(p) };
}

/** The generator over the compiled dropout op, or undefined when the kernels have none (a spec without dropout). */
export function deviceDropout(ops: ModelOpLauncher, seed: DropoutSeedWord): DropoutGenerator | undefined {
  if (!ops.has('dropout')) return undefined;
  return (out, mask, p, count) => {
    ops.launch('dropout', 'multipliers', { multiplier: out, ...seed.launchArguments(dropoutArguments(mask, p)), count });
  };
}
