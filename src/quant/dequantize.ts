// Ŵ[i,o] = s[k(i),o] · (q[i,o] − z[k(i),o]), k(i) = ⌊i/g⌋. Kernels never materialize Ŵ; the
// oracle does, because a dense Ŵ is the simplest thing to check them against.
import type { QuantizedWeight } from './quantized-weight.ts';

/** The dequantized weight Ŵ, K×N row-major. Zeros may be fractional (merged adapters). */
export function dequantize(weight: QuantizedWeight): Float64Array {
  const { inFeatures, outFeatures, groupSize, q, scales, zeros } = weight;
  const dense = new Float64Array(inFeatures * outFeatures);
  for (let i = 0; i < inFeatures; i++) {
    const group = Math.floor(i / groupSize);
    for (let o = 0; o < outFeatures; o++) {
      const g = group * outFeatures + o;
      dense[i * outFeatures + o] = scales[g] * (q[i * outFeatures + o] - zeros[g]);
    }
  }
  return dense;
}

/** Ŵ as float32 [out, in], llama2.c's and nn.Linear's layout. */
export function dequantizeOutIn(weight: QuantizedWeight): Float32Array {
  const { inFeatures: K, outFeatures: N } = weight;
  const w = dequantize(weight);
  const out = new Float32Array(K * N);
  for (let i = 0; i < K; i++) for (let o = 0; o < N; o++) out[o * K + i] = w[i * N + o]!;
  return out;
}
