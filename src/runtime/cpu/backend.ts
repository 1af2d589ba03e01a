// The cpu backend: the native addon when it is built (the default after `npm ci`), otherwise
// the TypeScript reference ops — slower by about five times, and said so, never silently.
import type { DecodeModel } from '../../model/llama-forward.ts';
import { LlamaForward } from '../../model/llama-forward.ts';
import type { Llama2cCheckpoint } from '../../model/llama2c-checkpoint.ts';
import type { Backend } from '../backend.ts';
import type { SyncTrainingOps } from '../ops.ts';
import { TYPESCRIPT_OPS } from '../typescript/ops.ts';
import { cpuAddonAvailable } from './addon.ts';
import { NativeLlamaForward } from './native-llama-forward.ts';
import { nativeCpuOps } from './native-ops.ts';

export interface CpuBackend extends Backend {
  readonly name: 'cpu';
  readonly ops: SyncTrainingOps;
  readonly decoder: (checkpoint: Llama2cCheckpoint) => DecodeModel;
  /** Empty when native; otherwise the line to show the user. */
  readonly notice: string;
}

const nothingToReport = () => '';
const nothingToClose = () => {};

export function cpuBackend(): CpuBackend {
  if (cpuAddonAvailable()) {
    return { name: 'cpu', ops: nativeCpuOps(), decoder: (c) => new NativeLlamaForward(c), notice: '', report: nothingToReport, close: nothingToClose };
  }
  return {
    name: 'cpu',
    report: nothingToReport,
    close: nothingToClose,
    ops: TYPESCRIPT_OPS,
    decoder: (c) => new LlamaForward(c),
    notice: 'note: the native CPU backend is not built (run `npm ci` or `npx node-gyp rebuild`); using the TypeScript reference ops, about 5× slower',
  };
}
