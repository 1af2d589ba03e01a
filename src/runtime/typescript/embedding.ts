// Token embedding: a row gather. The embedding table is frozen in QA-LoRA fine-tuning (it is
// not one of the adapted projections), so there is no backward: nothing upstream of it needs a
// gradient either.
import { checkLength, type Floats } from './floats.ts';

/** Throws unless each of the first `count` tokens is an id in [0, vocab) (every backend checks so on the host). */
export function checkTokens(tokens: ArrayLike<number>, count: number, vocab: number): void {
  for (let n = 0; n < count; n++) {
    const token = tokens[n];
    if (!(Number.isInteger(token) && token >= 0 && token < vocab)) {
      throw new RangeError(`token ${token} at index ${n} is outside the vocabulary of ${vocab}`);
    }
  }
}

/** out[n, :] = table[tokens[n], :] for the n < count tokens; table is [vocab, channels]. */
export function embeddingForward(out: Floats, tokens: ArrayLike<number>, table: Floats, count: number, channels: number): void {
  checkLength('embedding output', out, count * channels);
  checkTokens(tokens, count, table.length / channels);
  for (let n = 0; n < count; n++) {
    const row = tokens[n] * channels;
    const outRow = n * channels;
    for (let c = 0; c < channels; c++) out[outRow + c] = table[row + c];
  }
}
