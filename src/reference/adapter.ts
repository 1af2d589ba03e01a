// The trainable part of a QA-LoRA layer: A (L×r) and B (r×N) with scaling σ = alpha/r, and the
// pooling that turns x (K wide) into u (L wide). Shared by the reference layer and the merge.

/**
 * 'mean': u[t,k] = (1/g) Σ_j x[t, k·g+j], as the authors' code and QALORA.md's formulas.
 * 'sum':  u[t,k] = Σ_j x[t, k·g+j], the paper's Algorithm 1. Same function class
 *         (A_sum = A_mean/g), different optimiser behaviour.
 * PEFT's use_qalora pools mean × L instead; an adapter from there converts as A_mean = L·A_peft.
 */
export type Pooling = 'mean' | 'sum';

export interface QaLoraAdapter {
  readonly groupSize: number; // g
  readonly rank: number; // r
  readonly pooling: Pooling;
  /** σ = alpha / r. */
  readonly scaling: number;
  /** A, L×r row-major. */
  readonly a: Float64Array;
  /** B, r×N row-major. */
  readonly b: Float64Array;
}

/** The factor u = factor · Σ_{i∈k} x_i: 1/g for mean pooling, 1 for sum pooling. */
export function poolingFactor(pooling: Pooling, groupSize: number): number {
  return pooling === 'mean' ? 1 / groupSize : 1;
}
