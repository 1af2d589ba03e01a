// Causal grouped-query self-attention, one file for forward and backward.
//
// q: [B, T, H·hs], k and v: [B, T, KVH·hs]; query head h reads key/value head ⌊h / (H/KVH)⌋.
// For each (b, h, t), over the positions t' ≤ t:
//
//   s[t'] = q_t · k_t' / sqrt(hs)     p = softmax(s)     out_t = Σ_t' p[t'] · v_t'
//
// Saved for the backward: p, [B, H, T, T] (entries t' > t stay 0), plus q, k, v themselves. What
// a backend saves is its own (attentionSavedLength): a flash-style kernel keeps only the
// log-sum-exp of each row and recomputes p from q, k and it; the backward is therefore also
// handed the forward's output (flash attention's D = Σ dout·out).
//
//   dp[t'] = dout_t · v_t'                  dv_t' += p[t'] · dout_t
//   ds[t'] = p[t'] · (dp[t'] − Σ p·dp)      (softmax backward)
//   dq_t  += Σ_t' ds[t'] · k_t' / sqrt(hs)  dk_t' += ds[t'] · q_t / sqrt(hs)
import type { Floats } from './floats.ts';

export interface AttentionShape {
  readonly batch: number;
  readonly seqLen: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headSize: number;
}

function checkShape(shape: AttentionShape): void {
  if (shape.heads % shape.kvHeads !== 0) throw new RangeError(`heads ${shape.heads} is not a multiple of kv heads ${shape.kvHeads}`);
}

/** Floats attentionForward saves for attentionBackward: here the probabilities, [B, H, T, T]. */
export function attentionSavedLength(shape: AttentionShape): number {
  return shape.batch * shape.heads * shape.seqLen * shape.seqLen;
}

export function attentionForward(out: Floats, probs: Floats, q: Floats, k: Floats, v: Floats, shape: AttentionShape): void {
  checkShape(shape);
  const { batch, seqLen: T, heads, kvHeads, headSize } = shape;
  const qWidth = heads * headSize;
  const kvWidth = kvHeads * headSize;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(headSize);
  const scores = new Float64Array(T);
  const acc = new Float64Array(headSize);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kvHead = Math.floor(h / group) * headSize;
      for (let t = 0; t < T; t++) {
        const qRow = (b * T + t) * qWidth + h * headSize;
        let max = -Infinity;
        for (let s = 0; s <= t; s++) {
          const kRow = (b * T + s) * kvWidth + kvHead;
          let dot = 0;
          for (let i = 0; i < headSize; i++) dot += q[qRow + i] * k[kRow + i];
          scores[s] = dot * scale;
          if (scores[s] > max) max = scores[s];
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) {
          scores[s] = Math.exp(scores[s] - max);
          sum += scores[s];
        }
        const pRow = ((b * heads + h) * T + t) * T;
        acc.fill(0);
        for (let s = 0; s < T; s++) {
          if (s > t) {
            probs[pRow + s] = 0;
            continue;
          }
          const p = scores[s] / sum;
          probs[pRow + s] = p;
          const vRow = (b * T + s) * kvWidth + kvHead;
          for (let i = 0; i < headSize; i++) acc[i] += p * v[vRow + i];
        }
        for (let i = 0; i < headSize; i++) out[qRow + i] = acc[i];
      }
    }
  }
}

/** dq, dk, dv += the gradients for dout; q, k, v, out and probs as the forward saw, wrote and saved them. */
export function attentionBackward(
  dq: Floats, dk: Floats, dv: Floats, dOut: Floats,
  q: Floats, k: Floats, v: Floats, _out: Floats, probs: Floats, shape: AttentionShape,
): void {
  checkShape(shape);
  const { batch, seqLen: T, heads, kvHeads, headSize } = shape;
  const qWidth = heads * headSize;
  const kvWidth = kvHeads * headSize;
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(headSize);
  const dScores = new Float64Array(T);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const kvHead = Math.floor(h / group) * headSize;
      for (let t = 0; t < T; t++) {
        const qRow = (b * T + t) * qWidth + h * headSize;
        const pRow = ((b * heads + h) * T + t) * T;
        let weighted = 0;
        for (let s = 0; s <= t; s++) {
          const vRow = (b * T + s) * kvWidth + kvHead;
          const p = probs[pRow + s];
          let dp = 0;
          for (let i = 0; i < headSize; i++) {
            dp += dOut[qRow + i] * v[vRow + i];
            dv[vRow + i] += p * dOut[qRow + i];
          }
          dScores[s] = dp;
          weighted += p * dp;
        }
        for (let s = 0; s <= t; s++) {
          const ds = probs[pRow + s] * (dScores[s] - weighted) * scale;
          if (ds === 0) continue;
          const kRow = (b * T + s) * kvWidth + kvHead;
          for (let i = 0; i < headSize; i++) {
            dq[qRow + i] += ds * k[kRow + i];
            dk[kRow + i] += ds * q[qRow + i];
          }
        }
      }
    }
  }
}
