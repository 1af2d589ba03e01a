// Attention of one new token over a KV cache, for generation: the reference the cuda decode
// kernel (templates/cuda/ops/decode-attention.cu.hbs) computes exactly (the simulated device
// runs these functions) and the decode path's semantics.
//
// The cache holds keys and values [layers, kvHeads, capacity, headSize] float32, key rows
// RoPE'd already. append writes the token's k and v (each [kvHeads · headSize]) at `position`
// of `layer`; attend computes, for every query head h (GQA: its kv head is h / (heads/kvHeads)),
//   out[h] = Σ_{t < length} softmax_t(q[h]·K[t] / √headSize) · V[t]
// over the cache's first `length` positions of `layer`: causal by construction, since the cache
// holds no later position. Sums in float64 here; the kernel's float32 tiles round differently in
// the last bits.
import { checkLength, type Floats } from './floats.ts';

export interface DecodeAttentionShape {
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headSize: number;
  /** Positions the cache holds per layer and head. */
  readonly capacity: number;
}

/** Floats of one cache (keys or values). */
export const kvCacheLength = (shape: DecodeAttentionShape): number => shape.layers * shape.kvHeads * shape.capacity * shape.headSize;

/** Throws unless the layer and the positions lie in the cache. */
export function checkDecodePosition(shape: DecodeAttentionShape, layer: number, position: number): void {
  if (!(Number.isInteger(layer) && layer >= 0 && layer < shape.layers)) throw new RangeError(`layer ${layer} is outside the cache's ${shape.layers} layers`);
  if (!(Number.isInteger(position) && position >= 0 && position < shape.capacity)) throw new RangeError(`position ${position} is outside the cache's ${shape.capacity} positions`);
}

const rowOf = (shape: DecodeAttentionShape, layer: number, kvHead: number, position: number) =>
  ((layer * shape.kvHeads + kvHead) * shape.capacity + position) * shape.headSize;

/** keyCache and valueCache at (layer, ·, position) = k and v. */
export function appendKv(keyCache: Floats, valueCache: Floats, k: Floats, v: Floats, shape: DecodeAttentionShape, layer: number, position: number): void {
  checkDecodePosition(shape, layer, position);
  const { kvHeads, headSize } = shape;
  checkLength('k', k, kvHeads * headSize);
  checkLength('v', v, kvHeads * headSize);
  for (let h = 0; h < kvHeads; h++) {
    const row = rowOf(shape, layer, h, position);
    for (let d = 0; d < headSize; d++) {
      keyCache[row + d] = k[h * headSize + d]!;
      valueCache[row + d] = v[h * headSize + d]!;
    }
  }
}

/** out [heads · headSize] = attention of q [heads · headSize] over positions 0 … length − 1 of `layer`. */
export function decodeAttention(out: Floats, q: Floats, keyCache: Floats, valueCache: Floats, shape: DecodeAttentionShape, layer: number, length: number): void {
  checkDecodePosition(shape, layer, length - 1);
  const { heads, kvHeads, headSize } = shape;
  if (heads % kvHeads !== 0) throw new RangeError(`${heads} heads do not share ${kvHeads} kv heads evenly`);
  checkLength('q', q, heads * headSize);
  checkLength('out', out, heads * headSize);
  const scale = 1 / Math.sqrt(headSize);
  const scores = new Float64Array(length);
  const acc = new Float64Array(headSize);
  for (let h = 0; h < heads; h++) {
    const kvHead = Math.floor(h / (heads / kvHeads));
    let max = -Infinity;
    for (let t = 0; t < length; t++) {
      const row = rowOf(shape, layer, kvHead, t);
      let dot = 0;
      for (let d = 0; d < headSize; d++) dot += q[h * headSize + d]! * keyCache[row + d]!;
      scores[t] = dot * scale;
      if (scores[t]! > max) max = scores[t]!;
    }
    let sum = 0;
    acc.fill(0);
    for (let t = 0; t < length; t++) {
      const p = Math.exp(scores[t]! - max);
      sum += p;
      const row = rowOf(shape, layer, kvHead, t);
      for (let d = 0; d < headSize; d++) acc[d] += p * valueCache[row + d]!;
    }
    for (let d = 0; d < headSize; d++) out[h * headSize + d] = acc[d]! / sum;
  }
}

/** A KV cache in host memory over the functions above: the reference the device cache is tested against. */
export function hostKvCache(shape: DecodeAttentionShape): {
  readonly shape: DecodeAttentionShape;
  append(k: Floats, v: Floats, layer: number, position: number): void;
  attend(out: Floats, q: Floats, layer: number, length: number): void;
} {
  const keys = new Float32Array(kvCacheLength(shape)), values = new Float32Array(kvCacheLength(shape));
  return {
    shape,
    append: (k, v, layer, position) => appendKv(keys, values, k, v, shape, layer, position),
    attend: (out, q, layer, length) => decodeAttention(out, q, keys, values, shape, layer, length),
  };
}
