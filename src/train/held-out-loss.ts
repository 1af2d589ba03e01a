// The held-out loss that train reports and eval prints: the mean loss per counted token over
// the batches given (by default every batch of the held-out split), each batch weighted by the
// tokens it counts, so the number does not depend on how the split falls into batches.
import { countedRows } from '../runtime/typescript/cross-entropy.ts';
import type { Batch } from './qalora-model.ts';

export interface HeldOutLoss {
  readonly loss: number;
  /** Target tokens the loss averages over. */
  readonly tokens: number;
}

export interface ForwardOnly {
  forward(batch: Batch, options?: { readonly training?: boolean; readonly logitsOnDevice?: boolean }): Promise<number>;
}

const countedTokens = (batch: Batch) => countedRows(batch.targets!, batch.lossMask, batch.batchSize * batch.seqLen);

export function heldOutTokens(batches: readonly Batch[]): number {
  return batches.reduce((sum, batch) => sum + countedTokens(batch), 0);
}

export async function heldOutLoss(model: ForwardOnly, batches: readonly Batch[]): Promise<HeldOutLoss> {
  let total = 0;
  let tokens = 0;
  for (const batch of batches) {
    const counted = countedTokens(batch);
    if (counted === 0) continue;
    total += (await model.forward(batch, { training: false, logitsOnDevice: true })) * counted;
    tokens += counted;
  }
  return { loss: tokens === 0 ? NaN : total / tokens, tokens };
}
