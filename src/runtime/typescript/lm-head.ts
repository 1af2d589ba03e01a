// The output projection logits = x · Eᵀ with E the [vocab, channels] classifier, in LLaMA-2
// small models the token embedding itself (tied). Frozen: the backward gives dx only.
import type { Floats } from './floats.ts';

/** logits [rows, vocab] = x [rows, channels] · classifierᵀ. */
export function lmHeadForward(logits: Floats, x: Floats, classifier: Floats, rows: number, channels: number, vocab: number): void {
  for (let row = 0; row < rows; row++) {
    const xRow = row * channels;
    for (let v = 0; v < vocab; v++) {
      const eRow = v * channels;
      let sum = 0;
      for (let c = 0; c < channels; c++) sum += x[xRow + c] * classifier[eRow + c];
      logits[row * vocab + v] = sum;
    }
  }
}

/** dx += dlogits · E. */
export function lmHeadBackward(dx: Floats, dLogits: Floats, classifier: Floats, rows: number, channels: number, vocab: number): void {
  const acc = new Float64Array(channels);
  for (let row = 0; row < rows; row++) {
    acc.fill(0);
    for (let v = 0; v < vocab; v++) {
      const d = dLogits[row * vocab + v];
      if (d === 0) continue;
      const eRow = v * channels;
      for (let c = 0; c < channels; c++) acc[c] += d * classifier[eRow + c];
    }
    for (let c = 0; c < channels; c++) dx[row * channels + c] += acc[c];
  }
}
