// A plain float32 LLaMA forward pass for one token at a time with a KV cache — a line-by-line
// port of llama2.c run.c's forward(), used as the reference the compiled kernels are checked
// against. Weights and activations are Float32Array; dot products accumulate in JS numbers
// (float64) and round once when stored, so results can differ from run.c in the last bits.
//
// Per layer: x += wo · attention(RoPE(wq · n), RoPE(wk · n), wv · n) with n = rmsnorm(x, rms_att);
// x += w2 · (silu(w1 · m) ⊙ (w3 · m)) with m = rmsnorm(x, rms_ffn). Then logits = wcls · rmsnorm(x).
import type { Architecture } from './architecture.ts';
import { headDim } from './architecture.ts';
import type { Llama2cCheckpoint } from './llama2c-checkpoint.ts';
import { ropeAngles } from './rope-angles.ts';

/** y = W · x with W stored [out, in] row-major (llama2.c / nn.Linear layout). */
/** `yOffset` lets it write straight into a row of the KV cache without a subarray view. */
export function matmul(y: Float32Array, x: Float32Array, w: Float32Array, inFeatures: number, outFeatures: number, yOffset = 0): void {
  for (let i = 0; i < outFeatures; i++) {
    const row = i * inFeatures;
    // Four partial sums let V8 overlap the multiplies; all in float64, rounded once on store.
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let j = 0;
    for (; j + 3 < inFeatures; j += 4) {
      s0 += w[row + j] * x[j];
      s1 += w[row + j + 1] * x[j + 1];
      s2 += w[row + j + 2] * x[j + 2];
      s3 += w[row + j + 3] * x[j + 3];
    }
    for (; j < inFeatures; j++) s0 += w[row + j] * x[j];
    y[yOffset + i] = (s0 + s1) + (s2 + s3);
  }
}

/** out = weight ⊙ x / sqrt(mean(x²) + eps), eps the model's rmsNormEps; `out` may be `x`. */
export function rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, n: number, eps: number): void {
  let ss = 0;
  for (let j = 0; j < n; j++) ss += x[j] * x[j];
  const scale = 1 / Math.sqrt(ss / n + eps);
  for (let j = 0; j < n; j++) out[j] = weight[j] * (scale * x[j]);
}

/** In-place softmax over the first n entries. */
export function softmax(x: Float32Array, n: number, offset = 0): void {
  let max = x[offset];
  for (let i = 1; i < n; i++) if (x[offset + i] > max) max = x[offset + i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp(x[offset + i] - max);
    x[offset + i] = e;
    sum += e;
  }
  for (let i = 0; i < n; i++) x[offset + i] /= sum;
}

/** What generate() drives: anything that maps (token, position) to logits, with a KV cache inside. */
export interface DecodeModel {
  readonly arch: Architecture;
  /** Runs `token` at position `pos` (0, 1, 2, … in order) and returns the logits over the vocabulary. */
  forward(token: number, pos: number): Float32Array;
}

/**
 * Holds the weights, the KV cache and every activation buffer; `forward` allocates nothing.
 * Call forward(token, pos) with pos = 0, 1, 2, … in order; it overwrites the cache at `pos`.
 */
export class LlamaForward implements DecodeModel {
  readonly arch: Architecture;
  /** Logits of the last forward() call; overwritten by the next one. */
  readonly logits: Float32Array;
  private readonly weights: Llama2cCheckpoint;
  private readonly headSize: number;
  private readonly kvDim: number;
  private readonly x: Float32Array;
  private readonly xb: Float32Array;
  private readonly xb2: Float32Array;
  private readonly hb: Float32Array;
  private readonly hb2: Float32Array;
  private readonly q: Float32Array;
  private readonly att: Float32Array;
  private readonly headAcc: Float64Array;
  private readonly keyCache: Float32Array;
  private readonly valueCache: Float32Array;
  /** RoPE cos/sin per (position, pair), as run.c computes them, built once. */
  private readonly ropeCos: Float32Array;
  private readonly ropeSin: Float32Array;

  constructor(checkpoint: Llama2cCheckpoint) {
    const arch = checkpoint.arch;
    this.arch = arch;
    this.weights = checkpoint;
    this.headSize = headDim(arch);
    this.kvDim = this.headSize * arch.kvHeads;
    this.x = new Float32Array(arch.dim);
    this.xb = new Float32Array(arch.dim);
    this.xb2 = new Float32Array(arch.dim);
    this.hb = new Float32Array(arch.hiddenDim);
    this.hb2 = new Float32Array(arch.hiddenDim);
    this.q = new Float32Array(arch.dim);
    this.att = new Float32Array(arch.heads * arch.context);
    this.headAcc = new Float64Array(this.headSize);
    this.keyCache = new Float32Array(arch.layers * arch.context * this.kvDim);
    this.valueCache = new Float32Array(arch.layers * arch.context * this.kvDim);
    this.logits = new Float32Array(arch.vocab);

    // run.c: freq = 1 / θ^(head_dim_index / head_size) for the pair (i, i+1) with
    // head_dim_index = i % head_size, angle = pos · freq; θ is the model's.
    const angles = ropeAngles(this.headSize, arch.context, arch.ropeTheta);
    this.ropeCos = angles.cos;
    this.ropeSin = angles.sin;
  }

  /** Runs token `token` at position `pos` and returns the logits over the vocabulary. */
  forward(token: number, pos: number): Float32Array {
    const { dim, hiddenDim, heads, kvHeads, context, vocab } = this.arch;
    const { headSize, kvDim, x, xb, xb2, hb, hb2, q, att, headAcc, keyCache, valueCache } = this;
    if (!(token >= 0 && token < vocab)) throw new RangeError(`token ${token} is outside the vocabulary of ${vocab}`);
    if (!(pos >= 0 && pos < context)) throw new RangeError(`position ${pos} is outside the context of ${context}`);
    const kvMul = heads / kvHeads;
    const attScale = 1 / Math.sqrt(headSize);
    const pairs = headSize / 2;

    const embedding = this.weights.tokenEmbedding.data;
    for (let i = 0; i < dim; i++) x[i] = embedding[token * dim + i];

    for (let l = 0; l < this.arch.layers; l++) {
      const w = this.weights.layers[l];
      rmsNorm(xb, x, w.rmsAtt.data, dim, this.arch.rmsNormEps);

      const layerOffset = l * context * kvDim;
      const kvRow = layerOffset + pos * kvDim;
      matmul(q, xb, w.wq.data, dim, dim);
      matmul(keyCache, xb, w.wk.data, dim, kvDim, kvRow);
      matmul(valueCache, xb, w.wv.data, dim, kvDim, kvRow);

      // RoPE on consecutive pairs; k is only kvDim wide.
      const rope = pos * pairs;
      for (let i = 0; i < dim; i += 2) {
        const pair = (i % headSize) / 2;
        const cos = this.ropeCos[rope + pair];
        const sin = this.ropeSin[rope + pair];
        const q0 = q[i], q1 = q[i + 1];
        q[i] = q0 * cos - q1 * sin;
        q[i + 1] = q0 * sin + q1 * cos;
        if (i < kvDim) {
          const k0 = keyCache[kvRow + i], k1 = keyCache[kvRow + i + 1];
          keyCache[kvRow + i] = k0 * cos - k1 * sin;
          keyCache[kvRow + i + 1] = k0 * sin + k1 * cos;
        }
      }

      // Grouped-query attention: query head h reads key/value head h / kvMul.
      for (let h = 0; h < heads; h++) {
        const qOffset = h * headSize;
        const attOffset = h * context;
        const kvHeadOffset = layerOffset + Math.floor(h / kvMul) * headSize;
        for (let t = 0; t <= pos; t++) {
          const kOffset = kvHeadOffset + t * kvDim;
          let score = 0;
          for (let i = 0; i < headSize; i++) score += q[qOffset + i] * keyCache[kOffset + i];
          att[attOffset + t] = score * attScale;
        }
        softmax(att, pos + 1, attOffset);
        // Walk the cache row by row (contiguous) into a float64 accumulator, as run.c's loop order.
        headAcc.fill(0);
        for (let t = 0; t <= pos; t++) {
          const a = att[attOffset + t];
          const vOffset = kvHeadOffset + t * kvDim;
          for (let i = 0; i < headSize; i++) headAcc[i] += a * valueCache[vOffset + i];
        }
        for (let i = 0; i < headSize; i++) xb[qOffset + i] = headAcc[i];
      }

      matmul(xb2, xb, w.wo.data, dim, dim);
      for (let i = 0; i < dim; i++) x[i] += xb2[i];

      rmsNorm(xb, x, w.rmsFfn.data, dim, this.arch.rmsNormEps);
      matmul(hb, xb, w.w1.data, dim, hiddenDim);
      matmul(hb2, xb, w.w3.data, dim, hiddenDim);
      for (let i = 0; i < hiddenDim; i++) {
        const gate = hb[i];
        hb[i] = (gate / (1 + Math.exp(-gate))) * hb2[i];
      }
      matmul(xb, hb, w.w2.data, hiddenDim, dim);
      for (let i = 0; i < dim; i++) x[i] += xb[i];
    }

    rmsNorm(x, x, this.weights.rmsFinal.data, dim, this.arch.rmsNormEps);
    matmul(this.logits, x, this.weights.classifier.data, dim, vocab);
    return this.logits;
  }
}
