// lm_head and the masked softmax cross-entropy as one op, for a caller that needs the loss (and,
// in training, lm_head's input gradient) but not the logits: at the 7B shape with sequence 2048
// the logits, their softmax and their gradient are each a float32 [2048, 32000], 262 MB, of which
// this op holds one row at a time (the cuda backend goes by chunks of rows on cuBLAS). It computes
// what the unfused ops compute in this order, to the same rounding:
//
//   lmHeadForward → crossEntropyForward → (dx given) crossEntropyBackward(dLoss) → lmHeadBackward
//
// so the loss is the mean over the counted rows (cross-entropy.ts), and dx += ∂(dLoss·loss)/∂x.
// The count of counted rows scales every row's gradient: it comes from the targets and the mask
// (host arrays) before any row is computed.
import { checkTargets, countedRows, countsTowardLoss, type CrossEntropyResult } from './cross-entropy.ts';
import type { Floats } from './floats.ts';

/** The loss of logits = x · classifierᵀ against `targets`; with `dx`, dx += ∂(dLoss · loss)/∂x ([rows, channels]). */
export function lmHeadCrossEntropy(
  dx: Floats | undefined, x: Floats, classifier: Floats, targets: ArrayLike<number>, mask: ArrayLike<number> | undefined,
  rows: number, channels: number, vocab: number, dLoss = 1,
): CrossEntropyResult {
  checkTargets(targets, mask, rows, vocab);
  const counted = countedRows(targets, mask, rows);
  const scale = dLoss / counted;
  // One row of logits and of their gradient, in x's type: the unfused ops store both in the model's type.
  const row = (): Floats => (x instanceof Float32Array ? new Float32Array(vocab) : new Float64Array(vocab));
  const logits = row(), dLogits = row();
  const acc = new Float64Array(channels);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    if (!countsTowardLoss(targets, mask, r)) continue;
    const xRow = r * channels;
    for (let v = 0; v < vocab; v++) {
      const eRow = v * channels;
      let sum = 0;
      for (let c = 0; c < channels; c++) sum += x[xRow + c] * classifier[eRow + c];
      logits[v] = sum;
    }
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) if (logits[v] > max) max = logits[v];
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(logits[v] - max);
    const target = targets[r];
    total += max + Math.log(sum) - logits[target];
    if (dx === undefined) continue;
    // The probability as crossEntropyForward stores it, then crossEntropyBackward's two updates of a zeroed row.
    for (let v = 0; v < vocab; v++) {
      dLogits[v] = Math.exp(logits[v] - max) / sum;
      dLogits[v] = scale * dLogits[v];
    }
    dLogits[target] -= scale;
    acc.fill(0);
    for (let v = 0; v < vocab; v++) {
      const d = dLogits[v];
      if (d === 0) continue;
      const eRow = v * channels;
      for (let c = 0; c < channels; c++) acc[c] += d * classifier[eRow + c];
    }
    for (let c = 0; c < channels; c++) dx[xRow + c] += acc[c];
  }
  return { loss: counted === 0 ? NaN : total / counted, counted };
}
