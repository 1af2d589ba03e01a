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
/** Per-head width; LLaMA requires dim to be a multiple of heads. */
export function headDim(arch: Architecture): number {
  return arch.dim / arch.heads;
}

/**
 * Why this architecture cannot run ("head size is odd: …"), if its head size is odd: RoPE rotates each head's
 * dimensions in pairs. `names` are what the source calls dim and heads ("n_heads" in llama2.c).
 */
export function oddHeadSize(arch: Architecture, names: { dim: string; heads: string } = { dim: 'dim', heads: 'heads' }): string | undefined {
  const head = headDim(arch);
  if (!Number.isInteger(head) || head % 2 === 0) return undefined;
  return `head size is odd: ${names.dim} = ${arch.dim} / ${names.heads} = ${arch.heads} = ${head}, and RoPE rotates pairs of dimensions`;
}
