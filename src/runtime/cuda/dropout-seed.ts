// The step's dropout seed as one uint32 on the device, which the dropout op and unpool's entries
// read when they run, instead of a launch parameter: a step's kernels then take the same
// arguments every step (the seed is the only draw argument that changes; a layer's offset is its
// place in the step's sequence), so a CUDA graph captured from one step's backward replays the
// next step's (step-graph.ts). The word is rewritten, on the stream after the kernels already
// launched, when a mask names another seed than the one it holds: in a step's forward, never in
// its backward (the forward's masks again), so a captured backward holds no copy.
import type { DeviceBuffer } from './cuda.ts';
import type { DropoutArguments } from './device-dropout.ts';

/** A mask's arguments as the kernels take them: the seed's word in place of the seed. */
export interface DropoutLaunchArguments {
  readonly seedWord: DeviceBuffer;
  readonly offset: number;
  readonly threshold: number;
  readonly keptScale: number;
}

export interface DropoutSeedWord {
  /** The launch arguments of `args`, the word made to hold its seed first where a mask needs it (threshold > 0). */
  launchArguments(args: DropoutArguments): DropoutLaunchArguments;
  /** Copies to the word so far (one a step with dropout). */
  readonly uploads: () => number;
}

export function dropoutSeedWord(allocate: (bytes: number) => DeviceBuffer): DropoutSeedWord {
  let word: DeviceBuffer | undefined;
  let held: number | undefined;
  let uploads = 0;
  return {
    uploads: () => uploads,
    launchArguments({ seed, offset, threshold, keptScale }) {
      word ??= allocate(4);
      // Threshold 0 keeps every entry whatever the hash: the word's value does not matter then.
      if (threshold !== 0 && held !== seed) {
        word.upload(Uint32Array.of(seed));
        held = seed;
        uploads++;
      }
      return { seedWord: word, offset, threshold, keptScale };
    },
  };
}
