// The ops QaLoraModel computes with, as one swappable table. TYPESCRIPT_OPS, the functions of
// this folder, is the readable reference and the default; a backend (the native CPU one in
// src/runtime/cpu, the WebGPU one in src/runtime/webgpu) supplies another table with the same
// arguments and conventions. The model is handed the table rather than choosing a backend
// itself, so src/train never depends on a runtime.
//
// An op may return its result or a promise of it: a GPU backend's results come back from the
// device asynchronously, and the model awaits every op (awaiting a plain value costs a
// microtask). CPU tables are SyncTrainingOps, which a caller can use without awaiting.
// A device backend may also keep what its ops write on the device until the model asks for it
// with syncToHost (see residual.ts): the model touches its arrays only through the ops.
import { attentionBackward, attentionForward } from './attention.ts';
import { crossEntropyBackward, crossEntropyForward } from './cross-entropy.ts';
import { embeddingForward } from './embedding.ts';
import { lmHeadBackward, lmHeadForward } from './lm-head.ts';
import { qaloraLinearBackward, qaloraLinearForward } from './qalora-linear.ts';
import { residualAdd, syncToHost, zeroFill } from './residual.ts';
import { rmsnormBackward, rmsnormForward } from './rmsnorm.ts';
import { ropeBackward, ropeForward } from './rope.ts';
import { swigluBackward, swigluForward } from './swiglu.ts';

export interface SyncTrainingOps {
  /** Shown in benchmarks and errors: 'typescript', 'native-cpu', 'webgpu', … */
  readonly name: string;
  readonly embeddingForward: typeof embeddingForward;
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
  readonly residualAdd: typeof residualAdd;
  readonly zeroFill: typeof zeroFill;
  readonly syncToHost: typeof syncToHost;
}

/** The same function, allowed to answer with a promise. */
type MayAwait<F> = F extends (...args: infer A) => infer R ? (...args: A) => R | Promise<R> : never;

/** What QaLoraModel accepts: every op of SyncTrainingOps, each possibly asynchronous. */
export type TrainingOps = { readonly name: string } & {
  readonly [Op in Exclude<keyof SyncTrainingOps, 'name'>]: MayAwait<SyncTrainingOps[Op]>;
};

export const TYPESCRIPT_OPS: SyncTrainingOps = {
  name: 'typescript',
  embeddingForward, rmsnormForward, rmsnormBackward, qaloraLinearForward, qaloraLinearBackward, ropeForward, ropeBackward,
  attentionForward, attentionBackward, swigluForward, swigluBackward, lmHeadForward, lmHeadBackward,
  crossEntropyForward, crossEntropyBackward, residualAdd, zeroFill, syncToHost,
};
