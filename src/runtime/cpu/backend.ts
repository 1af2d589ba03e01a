// The cpu backend: the native addon when it is built (the default after `npm ci`), otherwise
// the TypeScript reference ops — slower by about five times, and said so, never silently.
import type { DecodeModel } from '../../model/llama-forward.ts';
import { LlamaForward } from '../../model/llama-forward.ts';
import type { Llama2cCheckpoint } from '../../model/llama2c-checkpoint.ts';
import type { SyncTrainingOps } from '../../train/ops/training-ops.ts';
import { TYPESCRIPT_OPS } from '../../train/ops/training-ops.ts';
import { cpuAddonAvailable } from './addon.ts';
import { NativeLlamaForward } from './native-llama-forward.ts';
import { nativeCpuOps } from './native-ops.ts';

export interface CpuBackend {
  readonly ops: SyncTrainingOps;
  readonly decoder: (checkpoint: Llama2cCheckpoint) => DecodeModel;
  /** Empty when native; otherwise the line to show the user. */
  readonly notice: string;
}

export function cpuBackend(): CpuBackend {
  if (cpuAddonAvailable()) {
    return { ops: nativeCpuOps(), decoder: (c) => new NativeLlamaForward(c), notice: '' };
  }
  return {
    ops: TYPESCRIPT_OPS,
    decoder: (c) => new LlamaForward(c),
    notice: 'note: the native CPU backend is not built (run `npm ci` or `npx node-gyp rebuild`); using the TypeScript reference ops, about 5× slower',
  };
}
