// The plan: the spec resolved against the model, one record per linear layer. Every later
// stage — kernel lowering, bindings, training, export — reads this and nothing earlier.
import type { Architecture } from '../model/architecture.ts';
import type { LinearLayer } from './layer-shapes.ts';

export type FloatDtype = 'fp16' | 'bf16' | 'fp32';
export type ZeroStorage = 'int' | FloatDtype;

export interface QuantPlan {
  readonly bits: 2 | 3 | 4 | 8;
  readonly group: number;
  /** L = paddedInFeatures / group: groups along the input of each output column. */
  readonly groups: number;
  /** In-features rounded up to a multiple of the group when `pad = zero`; else in-features. */
  readonly paddedInFeatures: number;
  readonly pad: 'none' | 'zero';
  readonly symmetric: boolean;
  readonly scaleDtype: FloatDtype;
  readonly zeroStorage: ZeroStorage;
  readonly method: 'rtn' | 'gptq';
  readonly gptq?: { readonly damp: number; readonly samples: number; readonly actOrder: boolean; readonly calibration?: string };
}

export interface AdapterPlan {
  readonly kind: 'qalora' | 'lora';
  readonly rank: number;
  readonly alpha: number;
  /** σ = alpha / rank, the factor on the adapter's output. */
  readonly scale: number;
  readonly dropout: number;
  /** Only for qalora: how each group of inputs is pooled. */
  readonly pooling?: 'mean' | 'sum';
  readonly init: 'kaiming_uniform' | 'xavier_uniform' | 'gaussian';
  readonly dtype: FloatDtype;
  /** Rows of A: the group count L for qalora, in-features K for lora. */
  readonly inputWidth: number;
}

export interface LayerSizes {
  /** The same layer as an fp16 matrix, the baseline the paper's reviewers asked for. */
  readonly fp16Bytes: number;
  readonly weightBytes: number;
  readonly scaleBytes: number;
  readonly zeroBytes: number;
  readonly adapterParams: number;
  readonly adapterBytes: number;
}

export type KernelRole =
  | 'quantize' | 'pack' | 'dequantize' | 'forward' | 'decode' | 'backward_data'
  | 'adapter_grad' | 'merge' | 'dense_forward' | 'dense_backward_data';

/** A linear layer (name, Hugging Face name, block, projection, K, N) with what the spec made of it. */
export interface LayerPlan extends LinearLayer {
  readonly quant: QuantPlan | null;
  readonly adapter: AdapterPlan | null;
  readonly kernels: readonly KernelRole[];
  readonly sizes: LayerSizes;
  /** `file:line` of every block and override that shaped this layer, in order of precedence. */
  readonly sources: readonly string[];
}

export interface PlanTotals {
  readonly linearFp16Bytes: number;
  readonly linearQuantizedBytes: number;
  readonly adapterParams: number;
  readonly adapterBytes: number;
  /** Embeddings, norms and an unquantized lm_head, kept in fp16. */
  readonly otherBytes: number;
  readonly modelFp16Bytes: number;
  readonly modelQuantizedBytes: number;
}

export type SettingsRecord = Readonly<Record<string, number | boolean | string | readonly string[]>>;

export interface Plan {
  readonly spec: string;
  readonly specFile: string;
  readonly model: {
    readonly source: 'checkpoint' | 'preset' | 'written';
    readonly preset?: string;
    readonly checkpoint?: { readonly path: string; readonly format: string };
    readonly tokenizer?: string;
    readonly architecture: Architecture;
  };
  readonly layers: readonly LayerPlan[];
  readonly totals: PlanTotals;
  readonly targets: Readonly<Record<string, SettingsRecord>>;
  readonly train?: SettingsRecord;
  readonly export?: SettingsRecord;
}
