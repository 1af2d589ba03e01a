// Adapter dropout's multipliers computed on the GPU by the dropout model op
// (src/backends/cuda/model-ops/dropout.ts) from a layer's draws, instead of expanded on the host
// and uploaded (at a LLaMA-7B step: 224 masks of 262,144 draws, and 2 × 235 MB of copies). The
// kernel's arguments are what makes it agree with the host's expansion bit for bit: the seed, the
// offset mod 2^32 (the host's state wraps the same way), the integer threshold ceil(p·2^32) and
// 1/(1−p) rounded to float32. Regenerated for the backward rather than kept from the forward:
// one small launch (rows × groups floats) instead of a buffer per adapted layer held across the
// step (235 MB at the 7B shape).
import { dropoutThreshold, keptScale, offsetBase, type DropoutDraws } from '../typescript/dropout-draws.ts';
import type { DeviceBuffer } from './cuda.ts';
import type { ModelOpLauncher } from './model-op-launcher.ts';

/** Writes `count` float32 multipliers for `mask` (ones without one) into `out`, on the device. */
export type DropoutGenerator = (out: DeviceBuffer, mask: DropoutDraws | undefined, p: number, count: number) => void;

/** The generator over the compiled dropout op, or undefined when the kernels have none (a spec without dropout). */
export function deviceDropout(ops: ModelOpLauncher): DropoutGenerator | undefined {
  if (!ops.has('dropout')) return undefined;
  return (out, mask, p, count) => ops.launch('dropout', 'multipliers', {
    multiplier: out,
    seed: mask?.seed ?? 0,
    offset: mask === undefined ? 0 : offsetBase(mask),
    // No mask: every entry kept with factor 1.
    threshold: mask === undefined ? 0 : dropoutThreshold(p),
    keptScale: mask === undefined ? 1 : keptScale(p),
    count,
  });
}
