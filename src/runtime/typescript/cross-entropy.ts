// Softmax cross-entropy over the vocabulary with a loss mask, fused (llm.c's crossentropy +
// softmax). The loss is the mean over the counted positions:
//
//   loss = (1/n) Σ_{t counted} (logsumexp(logits_t) − logits_t[target_t]),   n = #counted
//   dlogits_t = (softmax(logits_t) − onehot(target_t)) / n    for counted t, 0 otherwise
//
// A position counts when its mask entry is non-zero (no mask: every position) and its target
// is ≥ 0; a negative target is PyTorch's ignore_index. For Alpaca-style instruction tuning the
// mask is 1 on response tokens only, so the prompt is read but not learned.
import type { Floats } from './floats.ts';

export interface CrossEntropyResult {
  /** Mean loss over the counted positions; NaN when none counts. */
  readonly loss: number;
  /** How many positions counted (the n above). */
  readonly counted: number;
}

/** Whether `row` counts towards the loss: a non-negative target and a non-zero mask entry. */
export function countsTowardLoss(targets: ArrayLike<number>, mask: ArrayLike<number> | undefined, row: number): boolean {
  return targets[row] >= 0 && (mask === undefined || mask[row] !== 0);
}

/** How many of the rows count towards the loss. */
export function countedRows(targets: ArrayLike<number>, mask: ArrayLike<number> | undefined, rows: number): number {
  let counted = 0;
  for (let row = 0; row < rows; row++) if (countsTowardLoss(targets, mask, row)) counted++;
  return counted;
}

/** Throws unless every counted row's target lies in the vocabulary (every backend checks so on the host). */
export function checkTargets(targets: ArrayLike<number>, mask: ArrayLike<number> | undefined, rows: number, vocab: number): void {
  for (let row = 0; row < rows; row++) {
    if (countsTowardLoss(targets, mask, row) && !(targets[row] < vocab)) throw new RangeError(`target ${targets[row]} at row ${row} is outside the vocabulary of ${vocab}`);
  }
}

/** Writes softmax(logits) to probs ([rows, vocab]) for the backward and returns the loss. */
export function crossEntropyForward(
  probs: Floats, logits: Floats, targets: ArrayLike<number>, mask: ArrayLike<number> | undefined, rows: number, vocab: number,
): CrossEntropyResult {
  checkTargets(targets, mask, rows, vocab);
  let total = 0;
  let counted = 0;
  for (let row = 0; row < rows; row++) {
    const base = row * vocab;
    let max = -Infinity;
    for (let v = 0; v < vocab; v++) if (logits[base + v] > max) max = logits[base + v];
    let sum = 0;
    for (let v = 0; v < vocab; v++) sum += Math.exp(logits[base + v] - max);
    for (let v = 0; v < vocab; v++) probs[base + v] = Math.exp(logits[base + v] - max) / sum;
    if (!countsTowardLoss(targets, mask, row)) continue;
    const target = targets[row];
    total += max + Math.log(sum) - logits[base + target];
    counted++;
  }
  return { loss: counted === 0 ? NaN : total / counted, counted };
}

/** dlogits += ∂loss/∂logits for the forward's probs, scaled by dLoss (1 for the loss itself). */
export function crossEntropyBackward(
  dLogits: Floats, probs: Floats, targets: ArrayLike<number>, mask: ArrayLike<number> | undefined, rows: number, vocab: number, dLoss = 1,
): void {
  const counted = countedRows(targets, mask, rows);
  if (counted === 0) return;
  const scale = dLoss / counted;
  for (let row = 0; row < rows; row++) {
    if (!countsTowardLoss(targets, mask, row)) continue;
    const base = row * vocab;
    for (let v = 0; v < vocab; v++) dLogits[base + v] += scale * probs[base + v];
    dLogits[base + targets[row]] -= scale;
  }
}
