// The model ops that have CUDA kernels, by name: one list for the type, the manifest's reader and
// the runtime, without loading the kernel descriptions.
export const MODEL_OPS = ['embedding', 'rmsnorm', 'rope', 'swiglu', 'residual', 'convert', 'lm_head', 'cross_entropy', 'attention', 'adamw', 'sum_squares', 'dropout', 'unpool', 'decode_attention'] as const;

export type ModelOp = (typeof MODEL_OPS)[number];
