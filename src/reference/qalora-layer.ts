// The QA-LoRA linear layer in float64, forward and backward side by side (QALORA.md):
//
//   u = pool(x)                  T×L
//   v = drop(u) · A              T×r    dropout after pooling, as the authors' code does
//   y = x·Ŵ + σ · v·B (+ bias)   T×N
//
// Backward, W frozen (no gradient for q, s, z, nor for the base layer's bias):
//
//   dB = σ · vᵀ·dy               r×N
//   dv = σ · dy·Bᵀ               T×r
//   dA = drop(u)ᵀ · dv           L×r    (= uᵀ·dv without dropout)
//   du = drop(dv·Aᵀ)             T×L    gradient w.r.t. u before dropout (same mask and scale)
//   dx = dy·Ŵᵀ + unpool(du)      T×K
//
// The backward needs u and v from the forward, never x: that is what makes QA-LoRA's saved
// activations L wide instead of K wide. Ŵ is taken dense here; kernels dequantize on the fly.
import type { QaLoraAdapter } from './adapter.ts';
import { applyDropout, type DropoutMask } from './dropout.ts';
import { addRowBias, matmul, matmulTransposeA, matmulTransposeB } from './matrix.ts';
import { poolGroups, unpoolGroups } from './pooling.ts';

export interface QaLoraLayer {
  readonly inFeatures: number; // K
  readonly outFeatures: number; // N
  /** Ŵ, the dequantized frozen weight, K×N row-major (see quant/dequantize.ts). */
  readonly weight: Float64Array;
  /** Optional frozen bias, length N. */
  readonly bias?: Float64Array;
  readonly adapter: QaLoraAdapter;
}

export interface QaLoraForward {
  readonly y: Float64Array; // T×N
  /** Pooled input before dropout, T×L; saved for the backward. */
  readonly u: Float64Array;
  /** Adapter activation drop(u)·A, T×r; saved for the backward. */
  readonly v: Float64Array;
}

export interface QaLoraGradients {
  readonly dx: Float64Array; // T×K
  readonly dA: Float64Array; // L×r
  readonly dB: Float64Array; // r×N
  readonly du: Float64Array; // T×L
  readonly dv: Float64Array; // T×r
}

function groupCount(layer: QaLoraLayer): number {
  const { inFeatures, outFeatures, weight, adapter } = layer;
  const { groupSize, rank, a, b } = adapter;
  if (inFeatures % groupSize !== 0) throw new RangeError(`group size ${groupSize} does not divide in_features ${inFeatures}`);
  const groups = inFeatures / groupSize;
  if (weight.length !== inFeatures * outFeatures) throw new RangeError(`weight has ${weight.length} entries, expected ${inFeatures}×${outFeatures}`);
  if (a.length !== groups * rank) throw new RangeError(`A has ${a.length} entries, expected ${groups}×${rank}`);
  if (b.length !== rank * outFeatures) throw new RangeError(`B has ${b.length} entries, expected ${rank}×${outFeatures}`);
  return groups;
}

/** y = x·Ŵ + σ·(drop(pool(x))·A)·B (+ bias), x being T×K. The mask, if any, is T×L. */
export function qaloraForward(layer: QaLoraLayer, x: Float64Array, tokens: number, dropout?: DropoutMask): QaLoraForward {
  const groups = groupCount(layer);
  const { inFeatures: K, outFeatures: N, weight, bias, adapter } = layer;
  const { groupSize, rank, pooling, scaling, a, b } = adapter;
  const u = poolGroups(x, tokens, K, groupSize, pooling);
  const v = matmul(applyDropout(u, dropout), a, tokens, groups, rank);
  const base = matmul(x, weight, tokens, K, N);
  const update = matmul(v, b, tokens, rank, N);
  const y = base.map((value, i) => value + scaling * update[i]);
  if (bias !== undefined) addRowBias(y, bias, tokens, N);
  return { y, u, v };
}

/** Gradients of a loss with ∂loss/∂y = dy (T×N), from the forward's saved u and v. */
export function qaloraBackward(
  layer: QaLoraLayer,
  dy: Float64Array,
  saved: { readonly u: Float64Array; readonly v: Float64Array },
  tokens: number,
  dropout?: DropoutMask,
): QaLoraGradients {
  const groups = groupCount(layer);
  const { inFeatures: K, outFeatures: N, weight, adapter } = layer;
  const { groupSize, rank, pooling, scaling, a, b } = adapter;
  const dB = matmulTransposeA(saved.v, dy, tokens, rank, N).map((value) => scaling * value);
  const dv = matmulTransposeB(dy, b, tokens, N, rank).map((value) => scaling * value);
  const dA = matmulTransposeA(applyDropout(saved.u, dropout), dv, tokens, groups, rank);
  const du = applyDropout(matmulTransposeB(dv, a, tokens, rank, groups), dropout);
  const base = matmulTransposeB(dy, weight, tokens, N, K);
  const unpooled = unpoolGroups(du, tokens, K, groupSize, pooling);
  const dx = base.map((value, i) => value + unpooled[i]);
  return { dx, dA, dB, du, dv };
}
