// Plain LoRA over the same frozen quantized weight (QLoRA-style), for comparison with QA-LoRA:
//
//   v = drop(x) · A    A is K×r (g times wider than QA-LoRA's L×r), PEFT's dropout on x
//   y = x·Ŵ + σ · v·B (+ bias)
//
// Its backward needs x itself (dA = drop(x)ᵀ·dv), which is T×K to save, not T×L; and its update
// A·B is a dense K×N matrix that cannot fold into the per-group zeros.
import { applyDropout, type DropoutMask } from './dropout.ts';
import { addRowBias, matmul, matmulTransposeA, matmulTransposeB } from './matrix.ts';

export interface LoraLayer {
  readonly inFeatures: number; // K
  readonly outFeatures: number; // N
  readonly weight: Float64Array; // Ŵ, K×N
  readonly bias?: Float64Array; // N
  readonly rank: number; // r
  readonly scaling: number; // σ = alpha / r
  readonly a: Float64Array; // K×r
  readonly b: Float64Array; // r×N
}

export interface LoraForward {
  readonly y: Float64Array; // T×N
  readonly v: Float64Array; // T×r
}

export interface LoraGradients {
  readonly dx: Float64Array; // T×K
  readonly dA: Float64Array; // K×r
  readonly dB: Float64Array; // r×N
  readonly dv: Float64Array; // T×r
}

function checkShapes(layer: LoraLayer): void {
  const { inFeatures: K, outFeatures: N, weight, rank, a, b } = layer;
  if (weight.length !== K * N) throw new RangeError(`weight has ${weight.length} entries, expected ${K}×${N}`);
  if (a.length !== K * rank) throw new RangeError(`A has ${a.length} entries, expected ${K}×${rank}`);
  if (b.length !== rank * N) throw new RangeError(`B has ${b.length} entries, expected ${rank}×${N}`);
}

/** y = x·Ŵ + σ·(drop(x)·A)·B (+ bias). The mask, if any, is T×K. */
export function loraForward(layer: LoraLayer, x: Float64Array, tokens: number, dropout?: DropoutMask): LoraForward {
  checkShapes(layer);
  const { inFeatures: K, outFeatures: N, weight, bias, rank, scaling, a, b } = layer;
  const v = matmul(applyDropout(x, dropout), a, tokens, K, rank);
  const update = matmul(v, b, tokens, rank, N);
  const y = matmul(x, weight, tokens, K, N).map((value, i) => value + scaling * update[i]);
  if (bias !== undefined) addRowBias(y, bias, tokens, N);
  return { y, v };
}

/** Gradients for ∂loss/∂y = dy; needs the input x (T×K) and the forward's v. */
export function loraBackward(
  layer: LoraLayer,
  dy: Float64Array,
  saved: { readonly x: Float64Array; readonly v: Float64Array },
  tokens: number,
  dropout?: DropoutMask,
): LoraGradients {
  checkShapes(layer);
  const { inFeatures: K, outFeatures: N, weight, rank, scaling, a, b } = layer;
  const dB = matmulTransposeA(saved.v, dy, tokens, rank, N).map((value) => scaling * value);
  const dv = matmulTransposeB(dy, b, tokens, N, rank).map((value) => scaling * value);
  const dA = matmulTransposeA(applyDropout(saved.x, dropout), dv, tokens, K, rank);
  const adapterDx = applyDropout(matmulTransposeB(dv, a, tokens, rank, K), dropout);
  const dx = matmulTransposeB(dy, weight, tokens, N, K).map((value, i) => value + adapterDx[i]);
  return { dx, dA, dB, dv };
}
