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
  /** RoPE's base θ: pair p of a head turns by pos · θ^(−2p/headSize) (config.json's rope_theta). */
  readonly ropeTheta: number;
  /** The ε under every RMSNorm's square root (config.json's rms_norm_eps). */
  readonly rmsNormEps: number;
}

/**
 * LLaMA's θ and ε, which llama2.c's run.c hard-codes: the values of a llama2.c file, a preset, a
 * written-out architecture, and of plans and merged files from before the architecture carried them.
 */
export const LLAMA_ROPE_AND_NORM = { ropeTheta: 10000, rmsNormEps: 1e-5 } as const;

/** The integer fields (ropeTheta and rmsNormEps are positive reals, tiedEmbeddings a boolean). */
export const ARCHITECTURE_FIELDS = ['dim', 'hiddenDim', 'layers', 'heads', 'kvHeads', 'vocab', 'context'] as const;

/**
 * The architecture as run identities hash it (adapter hash, kernel manifest): θ and ε only when they
 * are not LLaMA's, so that the runs and kernels of a default model keep the hash they had before
 * the architecture carried them, while a changed θ or ε — a different function — changes it.
 */
export function architectureIdentity(arch: Architecture): Partial<Architecture> {
  const { ropeTheta, rmsNormEps, ...shapes } = arch;
  return {
    ...shapes,
    ...(ropeTheta === LLAMA_ROPE_AND_NORM.ropeTheta ? {} : { ropeTheta }),
    ...(rmsNormEps === LLAMA_ROPE_AND_NORM.rmsNormEps ? {} : { rmsNormEps }),
  };
}

/** Whether two architectures describe the same function (key order aside). */
export function sameArchitecture(a: Architecture, b: Architecture): boolean {
  return (Object.keys(a) as (keyof Architecture)[]).length === Object.keys(b).length && (Object.keys(a) as (keyof Architecture)[]).every((key) => a[key] === b[key]);
}

/** Whether θ and ε are usable: positive finite numbers. */
export function validRopeAndNorm(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}
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
