// The shape of a LLaMA model: everything the compiler needs, nothing that needs the weights.

export interface Architecture {
  /** Model width (d_model): in-features of q, k, v, gate, up; out-features of o, down. */
  readonly dim: number;
  /** MLP width (intermediate size): out-features of gate and up, in-features of down. */
  readonly hiddenDim: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly vocab: number;
  /** Maximum sequence length the model was trained for. */
  readonly context: number;
  /** Whether lm_head shares the token embedding's weights. */
  readonly tiedEmbeddings: boolean;
}

export const ARCHITECTURE_FIELDS = ['dim', 'hiddenDim', 'layers', 'heads', 'kvHeads', 'vocab', 'context'] as const;
export type ArchitectureField = (typeof ARCHITECTURE_FIELDS)[number];

/** Per-head width; LLaMA requires dim to be a multiple of heads. */
export function headDim(arch: Architecture): number {
  return arch.dim / arch.heads;
}
