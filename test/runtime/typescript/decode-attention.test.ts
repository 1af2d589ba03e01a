// The decode attention reference (src/runtime/typescript/decode-attention.ts) is the training
// attention's last row: a ragged sequence (GQA, 3 query heads a kv head, head size 6, 37
// positions in a 41-position cache, two layers) appended token by token, each token's attention
// over the cache equal to row t of attentionForward over the whole sequence — causal, so the
// positions appended later (and another layer's) never enter.
import { describe, expect, it } from 'vitest';
import { createRng } from '../../../src/reference/random.ts';
import { attentionForward, attentionSavedLength } from '../../../src/runtime/typescript/attention.ts';
import { hostKvCache } from '../../../src/runtime/typescript/decode-attention.ts';

describe('decode attention over a KV cache', () => {
  it('gives the training attention\'s row at every position, GQA, ragged', () => {
    const heads = 6, kvHeads = 2, headSize = 6, seqLen = 37;
    const shape = { batch: 1, seqLen, heads, kvHeads, headSize };
    const rng = createRng(7);
    const draw = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-2, 2));
    const q = draw(seqLen * heads * headSize), k = draw(seqLen * kvHeads * headSize), v = draw(seqLen * kvHeads * headSize);
    const expected = new Float32Array(q.length);
    attentionForward(expected, new Float32Array(attentionSavedLength(shape)), q, k, v, shape);

    const cache = hostKvCache({ layers: 2, heads, kvHeads, headSize, capacity: seqLen + 4 });
    const qWidth = heads * headSize, kvWidth = kvHeads * headSize;
    // Layer 0 holds other values: the layer's own rows are attended.
    for (let t = 0; t < seqLen; t++) cache.append(draw(kvWidth), draw(kvWidth), 0, t);
    const out = new Float32Array(qWidth);
    for (let t = 0; t < seqLen; t++) {
      cache.append(k.subarray(t * kvWidth, (t + 1) * kvWidth), v.subarray(t * kvWidth, (t + 1) * kvWidth), 1, t);
      cache.attend(out, q.subarray(t * qWidth, (t + 1) * qWidth), 1, t + 1);
      for (let i = 0; i < qWidth; i++) expect(out[i], `position ${t}, element ${i}`).toBeCloseTo(expected[t * qWidth + i]!, 5);
    }
  });

  it('refuses a position or layer outside the cache', () => {
    const cache = hostKvCache({ layers: 2, heads: 2, kvHeads: 1, headSize: 4, capacity: 3 });
    const row = new Float32Array(4);
    expect(() => cache.append(row, row, 0, 3)).toThrow('position 3 is outside the cache\'s 3 positions');
    expect(() => cache.append(row, row, 2, 0)).toThrow('layer 2 is outside the cache\'s 2 layers');
    expect(() => cache.attend(new Float32Array(8), new Float32Array(8), 0, 0)).toThrow('position -1 is outside');
  });
});
