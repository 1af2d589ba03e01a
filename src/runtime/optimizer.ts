// The optimizer's side of the runtime contract: what the trainer (src/train/adamw.ts's AdamW, on
// the host) and a device backend's AdamW (src/runtime/cuda/device-adamw.ts, where the gradients
// already are) have in common. A device optimizer keeps the adapters, their gradients and the
// moments on the device: the trainer then skips syncing gradients after the backward, asks it
// for the gradient norm first (one float back) and syncs the adapters only for checkpoints.
import type { Floats } from './typescript/floats.ts';

export interface OptimizerParameter {
  readonly name: string;
  readonly value: Floats;
  readonly grad: Floats;
}

/** Learning rate for the update with 0-based index `step`. */
export type Schedule = (step: number) => number;

export interface AdamWOptions {
  readonly lr: number | Schedule;
  readonly beta1?: number; // 0.9
  readonly beta2?: number; // 0.999
  readonly eps?: number; // 1e-8
  readonly weightDecay?: number; // 0
  /** Clip the global gradient norm to this; omit for no clipping (QA-LoRA paper: 0.3). */
  readonly maxGradNorm?: number;
}

export interface StepReport {
  /** 1-based count of updates done, this one included. */
  readonly step: number;
  readonly lr: number;
  /** Global gradient norm before clipping. */
  readonly gradNorm: number;
  readonly clipped: boolean;
}

export interface OptimizerState {
  readonly step: number;
  readonly m: readonly ArrayLike<number>[];
  readonly v: readonly ArrayLike<number>[];
}

export interface Optimizer {
  readonly stepsDone: number;
  /** Global L2 norm of every gradient (NaN or Infinity when one is not finite). */
  gradNorm(): number | Promise<number>;
  /** One update from the gradients currently in the parameters (they are not modified). */
  step(): StepReport | Promise<StepReport>;
  /** Moments and step count, for checkpoints (on the host). */
  state(): { readonly step: number; readonly m: readonly Float64Array[]; readonly v: readonly Float64Array[] };
  restore(state: OptimizerState): void;
  /** Set by an optimizer that keeps parameters and gradients on the device. */
  readonly onDevice?: true;
}
