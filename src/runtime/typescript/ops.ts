// The TypeScript reference ops as one table: the readable float32 implementation every other
// backend is tested against (src/runtime/ops.ts states the contract).
import { attentionBackward, attentionForward, attentionSavedLength } from './attention.ts';
import { crossEntropyBackward, crossEntropyForward } from './cross-entropy.ts';
import { embeddingForward } from './embedding.ts';
import { lmHeadBackward, lmHeadForward } from './lm-head.ts';
import { qaloraLinearBackward, qaloraLinearForward } from './qalora-linear.ts';
import { residualAdd, syncToHost, zeroFill } from './residual.ts';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.ts';
import { ropeBackward, ropeForward } from './rope.ts';
import { swigluBackward, swigluForward } from './swiglu.ts';
import type { SyncTrainingOps } from '../ops.ts';

export const TYPESCRIPT_OPS: SyncTrainingOps = {
  name: 'typescript',
  embeddingForward, rmsnormForward, rmsnormBackward, qaloraLinearForward, qaloraLinearBackward, ropeForward, ropeBackward,
  attentionSavedLength, attentionForward, attentionBackward, swigluForward, swigluBackward, lmHeadForward, lmHeadBackward,
  crossEntropyForward, crossEntropyBackward, residualAdd, zeroFill, syncToHost,
};
