// A case for lm_head and the cross-entropy, fused or not (test/runtime/typescript and cuda
// lm-head-cross-entropy tests): ragged shapes, masked rows and ignored targets, and what the four
// unfused TypeScript ops compute of it.
import { createRng } from '../../src/reference/random.ts';
import { crossEntropyBackward, crossEntropyForward } from '../../src/runtime/typescript/cross-entropy.ts';
import { allocateFloats, type FloatType } from '../../src/runtime/typescript/floats.ts';
import { lmHeadBackward, lmHeadForward } from '../../src/runtime/typescript/lm-head.ts';

export interface HeadCase {
  readonly rows: number;
  readonly channels: number;
  readonly vocab: number;
  readonly x: Float32Array;
  readonly classifier: Float32Array;
  readonly targets: Int32Array;
  readonly mask: Uint8Array;
  /** dx's values before the op adds into it. */
  readonly dx: Float32Array;
}

/** Rows where the loss counts, rows masked out, rows with an ignored target (-1). */
export function headCase(rows: number, channels: number, vocab: number, seed: number): HeadCase {
  const rng = createRng(seed);
  const floats = (n: number, scale: number) => Float32Array.from({ length: n }, () => scale * rng.normal());
  return {
    rows, channels, vocab, x: floats(rows * channels, 1), classifier: floats(vocab * channels, 0.3),
    targets: Int32Array.from({ length: rows }, (_, r) => (r % 7 === 3 ? -1 : Math.floor(rng.next() * vocab))),
    mask: Uint8Array.from({ length: rows }, (_, r) => (r % 5 === 1 ? 0 : 1)), dx: floats(rows * channels, 0.1),
  };
}

/** The unfused ops in the model's order: the loss, and dx after lm_head's backward. */
export function unfused(c: HeadCase, dtype: FloatType, dLoss: number): { loss: number; counted: number; dx: Float64Array } {
  const as = (values: Float32Array) => {
    const out = allocateFloats(dtype, values.length);
    out.set(values);
    return out;
  };
  const x = as(c.x), classifier = as(c.classifier), dx = as(c.dx);
  const logits = allocateFloats(dtype, c.rows * c.vocab), probs = allocateFloats(dtype, c.rows * c.vocab), dLogits = allocateFloats(dtype, c.rows * c.vocab);
  lmHeadForward(logits, x, classifier, c.rows, c.channels, c.vocab);
  const { loss, counted } = crossEntropyForward(probs, logits, c.targets, c.mask, c.rows, c.vocab);
  crossEntropyBackward(dLogits, probs, c.targets, c.mask, c.rows, c.vocab, dLoss);
  lmHeadBackward(dx, dLogits, classifier, c.rows, c.channels, c.vocab);
  return { loss, counted, dx: Float64Array.from(dx) };
}

