// The group pooling that makes QA-LoRA's adapter g times narrower than LoRA's: each group of g
// consecutive inputs (the same inputs that share a quantization scale and zero) becomes one
// pooled input. unpool is its transpose, which is what the backward needs.
import { poolingFactor, type Pooling } from './adapter.ts';

/** x (T×K) → u (T×L), u[t,k] = c · Σ_{j<g} x[t, k·g+j], c = 1/g (mean) or 1 (sum). */
export function poolGroups(x: Float64Array, tokens: number, inFeatures: number, groupSize: number, pooling: Pooling): Float64Array {
  if (inFeatures % groupSize !== 0) throw new RangeError(`group size ${groupSize} does not divide in_features ${inFeatures}`);
  if (x.length !== tokens * inFeatures) throw new RangeError(`x has ${x.length} entries, expected ${tokens}×${inFeatures}`);
  const groups = inFeatures / groupSize;
  const factor = poolingFactor(pooling, groupSize);
  const u = new Float64Array(tokens * groups);
  for (let t = 0; t < tokens; t++) {
    for (let k = 0; k < groups; k++) {
      let sum = 0;
      for (let j = 0; j < groupSize; j++) sum += x[t * inFeatures + k * groupSize + j];
      u[t * groups + k] = factor * sum;
    }
  }
  return u;
}

/** du (T×L) → T×K, [t,i] = c · du[t, ⌊i/g⌋]: the transpose of poolGroups. */
export function unpoolGroups(du: Float64Array, tokens: number, inFeatures: number, groupSize: number, pooling: Pooling): Float64Array {
  const groups = inFeatures / groupSize;
  if (du.length !== tokens * groups) throw new RangeError(`du has ${du.length} entries, expected ${tokens}×${groups}`);
  const factor = poolingFactor(pooling, groupSize);
  const dx = new Float64Array(tokens * inFeatures);
  for (let t = 0; t < tokens; t++) {
    for (let i = 0; i < inFeatures; i++) dx[t * inFeatures + i] = factor * du[t * groups + Math.floor(i / groupSize)];
  }
  return dx;
}
