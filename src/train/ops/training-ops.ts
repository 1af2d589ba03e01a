// The ops QaLoraModel computes with, as one swappable table. TYPESCRIPT_OPS, the functions of
// this folder, is the readable reference and the default; a backend (the native CPU one in
// src/runtime/cpu) supplies another table with the same signatures and conventions. The model
// is handed the table rather than choosing a backend itself, so src/train never depends on a
// runtime.
import { attentionBackward, attentionForward } from './attention.ts';
import { crossEntropyBackward, crossEntropyForward } from './cross-entropy.ts';
import { lmHeadBackward, lmHeadForward } from './lm-head.ts';
import { qaloraLinearBackward, qaloraLinearForward } from './qalora-linear.ts';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.ts';
import { ropeBackward, ropeForward } from './rope.ts';
import { swigluBackward, swigluForward } from './swiglu.ts';

export interface TrainingOps {
  /** Shown in benchmarks and errors: 'typescript', 'native-cpu', … */
  readonly name: string;
  readonly rmsnormForward: typeof rmsnormForward;
  readonly rmsnormBackward: typeof rmsnormBackward;
  readonly qaloraLinearForward: typeof qaloraLinearForward;
  readonly qaloraLinearBackward: typeof qaloraLinearBackward;
  readonly ropeForward: typeof ropeForward;
  readonly ropeBackward: typeof ropeBackward;
  readonly attentionForward: typeof attentionForward;
  readonly attentionBackward: typeof attentionBackward;
  readonly swigluForward: typeof swigluForward;
  readonly swigluBackward: typeof swigluBackward;
  readonly lmHeadForward: typeof lmHeadForward;
  readonly lmHeadBackward: typeof lmHeadBackward;
  readonly crossEntropyForward: typeof crossEntropyForward;
  readonly crossEntropyBackward: typeof crossEntropyBackward;
}

export const TYPESCRIPT_OPS: TrainingOps = {
  name: 'typescript',
  rmsnormForward, rmsnormBackward, qaloraLinearForward, qaloraLinearBackward, ropeForward, ropeBackward,
  attentionForward, attentionBackward, swigluForward, swigluBackward, lmHeadForward, lmHeadBackward,
  crossEntropyForward, crossEntropyBackward,
};
