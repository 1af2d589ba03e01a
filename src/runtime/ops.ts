// The runtime's op contract: the ops QaLoraModel (src/train) computes with, as one swappable
// table. TYPESCRIPT_OPS (src/runtime/typescript) is the readable reference and the default; a
// backend (src/runtime/cpu, webgpu, cuda) supplies another table with the same arguments and
// conventions — the reference functions' signatures are the contract. The model is handed the
// table rather than choosing a backend itself, so src/train depends on this contract alone.
//
// An op may return its result or a promise of it: a GPU backend's results come back from the
// device asynchronously, and the model awaits every op (awaiting a plain value costs a
// microtask). CPU tables are SyncTrainingOps, which a caller can use without awaiting.
// A device backend may also keep what its ops write on the device until the model asks for it
// with syncToHost (see typescript/residual.ts): the model touches its arrays only through the ops.
import type { attentionBackward, attentionForward, attentionSavedLength } from './typescript/attention.ts';
import type { crossEntropyBackward, crossEntropyForward } from './typescript/cross-entropy.ts';
import type { embeddingForward } from './typescript/embedding.ts';
import type { lmHeadBackward, lmHeadForward } from './typescript/lm-head.ts';
import type { lmHeadCrossEntropy } from './typescript/lm-head-cross-entropy.ts';
import type { qaloraLinearBackward, qaloraLinearForward } from './typescript/qalora-linear.ts';
import type { residualAdd, syncToHost, zeroFill } from './typescript/residual.ts';
import type { TrainingStepGraph } from './cuda/step-graph.ts';
import type { rmsnormBackward, rmsnormForward } from './typescript/rmsnorm.ts';
import type { ropeBackward, ropeForward } from './typescript/rope.ts';
import type { swigluBackward, swigluForward } from './typescript/swiglu.ts';
import type { AdamWOptions, Optimizer, OptimizerParameter } from './optimizer.ts';
import type { Bits, QuantizedWeight } from '../quant/quantized-weight.ts';
import type { ScaleDtype } from '../quant/scale-dtype.ts';
import type { Floats } from './typescript/floats.ts';

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
  readonly attentionSavedLength: typeof attentionSavedLength;
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

/** What a device backend measured of its run: the most device memory it held (bytes), its kernel launches, and (profiled) where the time went. */
export interface DeviceStats {
  readonly peakBytes: number;
  readonly launches: number;
  readonly profile?: readonly { readonly name: string; readonly kind: string; readonly calls: number; readonly milliseconds: number }[];
}

/** What the spec says of one projection's quantization, as a frozen quantizer needs it. */
export interface FrozenQuantization {
  readonly bits: Bits;
  readonly group: number;
  readonly symmetric: boolean;
  /**
   * The dtype the scales are stored in (withStoredScales). Required: a device holds float32
   * scales, so a projection with exact float64 ones (a spec without a scale dtype: tests) is
   * quantized on the host.
   */
  readonly scaleDtype: ScaleDtype;
}

/**
 * RTN of frozen float weights where a device backend computes (the cuda backend's compiled
 * quantize and pack kernels): the same codes, scales and zeros as the host's quantizeProjection
 * (src/train/quantize-projection.ts), bit for bit, left on the device in the layout its linear
 * kernels bind. The weight it returns reads its arrays back from the device only when asked.
 */
export interface FrozenQuantizer {
  /** `weight` is [outFeatures, inFeatures], as a checkpoint stores it; `name` (layers.0.q) picks the layer's kernels. */
  quantize(name: string, weight: Float32Array, outFeatures: number, inFeatures: number, quantization: FrozenQuantization): QuantizedWeight;
  /** Frees what quantizing needed (the staged float weight, the codes) once the model is built. */
  close(): void;
}

/** What QaLoraModel accepts: every op of SyncTrainingOps, each possibly asynchronous (sizes are answered at once). */
export type TrainingOps = Pick<SyncTrainingOps, 'name' | 'attentionSavedLength'> & {
  readonly [Op in Exclude<keyof SyncTrainingOps, 'name' | 'attentionSavedLength'>]: MayAwait<SyncTrainingOps[Op]>;
} & {
  /** A device backend's measurements so far (summary.json records them under `device`). */
  readonly deviceStats?: () => DeviceStats;
  /**
   * lm_head and the cross-entropy fused (typescript/lm-head-cross-entropy.ts is the reference): the
   * loss and, given dx, lm_head's input gradient, without the [rows, vocab] logits, their softmax
   * or their gradient ever existing whole. The model uses it when the caller does not ask for the
   * logits (ForwardOptions.logitsOnDevice); a table without it runs the four unfused ops.
   */
  readonly lmHeadCrossEntropy?: MayAwait<typeof lmHeadCrossEntropy>;
  /**
   * rmsnormForward that also writes x into `kept`, in the form the backward reads it: a device
   * backend's 16-bit activation type, so that a training step keeps each block's residual stream
   * for the norms' backward in half the bytes of the float32 stream the forward adds in
   * (rmsnormBackward then takes `kept` as its x). A table without it: the model keeps the float32
   * stream itself, as the host backends do.
   */
  readonly rmsnormForwardKeepingInput?: (out: Floats, rstd: Floats, kept: Floats, x: Floats, weight: Floats, rows: number, channels: number, eps: number) => void | Promise<void>;
  /** A device backend's RTN of the frozen float weights (the host quantizes them otherwise); opened for one model's setup. */
  readonly frozenQuantizer?: () => FrozenQuantizer;
  /** A device backend's AdamW, where the gradients are (the trainer's host AdamW otherwise). */
  readonly adamw?: (parameters: readonly OptimizerParameter[], options: AdamWOptions) => Optimizer;
  /** A device backend's training-step graph: the trainer runs each backward through it (cuda/step-graph.ts). */
  readonly stepGraph?: TrainingStepGraph;
};
