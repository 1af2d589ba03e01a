// The dropout multipliers of several adapted layers from one launch of the dropout op. A layer's
// multipliers are entries offset … offset + count of its forward's counter-based sequence
// (device-dropout.ts), and the model draws its layers one after another (q, k, v, o, gate, up,
// down, the next block's q …: QaLoraModel.linearForward), so one launch of WINDOW_LAYERS × the
// first layer's count from its offset holds the next layers' multipliers too: a later request
// whose entries lie inside the window is a view of it, bit for bit what its own launch would have
// written (entry i of the window is draw start + i, whatever layer asks). At the 7B shape a
// block's seven launches become three (q with k and v, o with gate and up, down alone: its 344
// groups fill the window), for 3 MB of device memory held instead of a pooled buffer a call.
// A request outside the window (another seed or p, the next forward's first layer, an offset
// behind the window) launches a new one. Without a mask every multiplier is 1 (an evaluation
// forward), so such requests all hit one window of ones.
import type { DeviceBuffer } from './cuda.ts';
import { dropoutArguments, type DropoutArguments, type DropoutGenerator } from './device-dropout.ts';
import type { DropoutDraws } from '../typescript/dropout-draws.ts';

/** How many layers of the first request's size a launch writes. */
export const WINDOW_LAYERS = 3;

/** A view is handed out only at 16 bytes into the window, as a buffer of its own would start. */
const ALIGNED_ENTRIES = 4;

export interface DropoutWindow {
  /**
   * `count` float32 multipliers for `mask` on the device. A miss rewrites the window on the
   * stream, after every kernel already launched: a view stays valid for the launches of the call
   * that asked for it (a linear call binds one layer's mask), not for a kernel launched after
   * another call's miss.
   */
  multipliers(mask: DropoutDraws | undefined, p: number, count: number): DeviceBuffer;
  /** Launches of the dropout op so far. */
  readonly launches: () => number;
}

export function dropoutWindow(generate: DropoutGenerator, allocate: (bytes: number) => DeviceBuffer, layers = WINDOW_LAYERS): DropoutWindow {
  let buffer: DeviceBuffer | undefined;
  let capacity = 0;
  /** What the buffer holds: entries start … start + count (mod 2^32) of the sequence `held` describes. */
  let held: { readonly args: DropoutArguments; readonly count: number } | undefined;
  let launches = 0;
  const sameSequence = (a: DropoutArguments, b: DropoutArguments) => a.seed === b.seed && a.threshold === b.threshold && a.keptScale === b.keptScale;
  return {
    launches: () => launches,
    multipliers(mask, p, count) {
      const args = dropoutArguments(mask, p);
      if (held !== undefined && buffer !== undefined && sameSequence(held.args, args)) {
        // Without a mask every entry is 1: any window of ones serves any request that fits.
        const skip = mask === undefined ? 0 : (args.offset - held.args.offset) >>> 0;
        if (skip % ALIGNED_ENTRIES === 0 && skip + count <= held.count) return buffer.view(skip * 4, count * 4);
      }
      if (capacity < count) {
        capacity = Math.ceil((layers * count) / ALIGNED_ENTRIES) * ALIGNED_ENTRIES;
        buffer = allocate(capacity * 4);
      }
      generate(buffer!, mask, p, capacity);
      launches++;
      held = { args, count: capacity };
      return buffer!.view(0, count * 4);
    },
  };
}
