// Adapter dropout as draws (src/runtime/typescript/dropout-draws.ts): expanding { seed, offset }
// is exactly the sequential generator the model drew its masks from before — layer after layer,
// ragged lengths, seeds at the ends of the u32 range — with the integer threshold deciding
// exactly as the float comparison did, at the edges too; and the model hands its layers draws
// that expand to that sequence.
import { describe, expect, it } from 'vitest';
import { createRng } from '../../../src/reference/random.ts';
import { dropoutDraws, dropoutThreshold, drawBits, expandDropoutMask, keptScale } from '../../../src/runtime/typescript/dropout-draws.ts';
import { keepScales } from '../../../src/runtime/kernel-buffers.ts';
import type { AdapterActivations } from '../../../src/runtime/typescript/qalora-linear.ts';
import { TYPESCRIPT_OPS } from '../../../src/runtime/typescript/ops.ts';
import { QaLoraModel } from '../../../src/train/qalora-model.ts';
import { specForEveryProjection } from '../../../src/train/qalora-spec.ts';
import { randomCheckpoint, TINY_ARCH } from '../../train/tiny-model.ts';

/** The masks as the model drew them before: one createRng(seed), `next() ≥ p` per entry, layer after layer. */
function sequentialMasks(seed: number, layers: readonly { length: number; p: number }[]): Uint8Array[] {
  const rng = createRng(seed);
  return layers.map(({ length, p }) => Uint8Array.from({ length }, () => (rng.next() >= p ? 1 : 0)));
}

describe('dropout draws', () => {
  const layers = [{ length: 7, p: 0.05 }, { length: 1, p: 0.5 }, { length: 130, p: 0.1 }, { length: 37, p: 0.9 }, { length: 512, p: 0.3 }];

  it.each([0, 1, 99, 0xdeadbeef, 0xffffffff])('expand to the sequential generator\'s masks, layer after layer (seed %d)', (seed) => {
    const expected = sequentialMasks(seed, layers);
    let offset = 0;
    layers.forEach(({ length, p }, i) => {
      expect(expandDropoutMask(dropoutDraws(seed, offset), length, p), `layer ${i}`).toEqual(expected[i]);
      offset += length;
    });
  });

  it('draw i is the generator\'s (i + 1)-th output, and counters wrap mod 2^32 as the state does', () => {
    const rng = createRng(12345);
    for (let i = 0; i < 100; i++) expect(drawBits(12345, i) / 2 ** 32).toBe(rng.next());
    const far = 2 ** 32 + 17;
    expect(expandDropoutMask(dropoutDraws(7, far), 50, 0.4)).toEqual(expandDropoutMask(dropoutDraws(7, 17), 50, 0.4));
    const wrapping = expandDropoutMask(dropoutDraws(7, 2 ** 32 - 3), 10, 0.4);
    expect(wrapping).toEqual(Uint8Array.from([...expandDropoutMask(dropoutDraws(7, 2 ** 32 - 3), 3, 0.4), ...expandDropoutMask(dropoutDraws(7, 0), 7, 0.4)]));
  });

  it('decides in integers exactly as z / 2^32 ≥ p, at the threshold itself', () => {
    for (let i = 0; i < 20; i++) {
      const z = drawBits(3, i);
      // p exactly z / 2^32: kept; the next representable step up: dropped.
      expect(z >= dropoutThreshold(z / 2 ** 32)).toBe(true);
      expect(z >= dropoutThreshold((z + 1) / 2 ** 32)).toBe(false);
      expect(z >= dropoutThreshold(z / 2 ** 32 + 2 ** -60)).toBe(z / 2 ** 32 >= z / 2 ** 32 + 2 ** -60);
    }
    expect(dropoutThreshold(0)).toBe(0);
    expect(dropoutThreshold(0.5)).toBe(2 ** 31);
    expect(() => dropoutThreshold(1)).toThrow(RangeError);
    expect(() => dropoutThreshold(1 - 2 ** -40)).toThrow('keeps nothing');
  });

  it('give the multipliers 1/(1−p) in float32 where kept, 0 where dropped, 1 without a mask', () => {
    const draws = dropoutDraws(5, 40);
    const keep = expandDropoutMask(draws, 300, 0.2);
    expect(keepScales(draws, 300, 0.2)).toEqual(Float32Array.from(keep, (k) => (k ? keptScale(0.2) : 0)));
    expect(keptScale(0.2)).toBe(Math.fround(1.25));
    expect(keepScales(undefined, 3, 0.2)).toEqual(new Float32Array([1, 1, 1]));
  });
});

describe('the model\'s dropout', () => {
  it('hands each layer with dropout the next u.length draws of the step\'s seed, in the order the layers run; none to p = 0 or an inference forward', async () => {
    const spec = specForEveryProjection(TINY_ARCH, (projection) => ({
      bits: 4, group: 4, adapter: { rank: 2, alpha: 4, dropout: projection === 'up' ? 0 : projection === 'v' ? 0.5 : 0.25, pooling: 'mean' },
    }));
    const seen: { mask: AdapterActivations['mask']; length: number }[] = [];
    const ops = {
      ...TYPESCRIPT_OPS,
      qaloraLinearForward: (...args: Parameters<typeof TYPESCRIPT_OPS.qaloraLinearForward>) => {
        const saved = args[4];
        if (saved !== undefined) seen.push({ mask: saved.mask, length: saved.u.length });
        return TYPESCRIPT_OPS.qaloraLinearForward(...args);
      },
    };
    const model = new QaLoraModel(randomCheckpoint(TINY_ARCH, 4), spec, { ops });
    const batch = { batchSize: 2, seqLen: 3, tokens: [1, 2, 3, 4, 5, 6] };
    await model.forward(batch, { training: true, dropoutSeed: 0xfeedbeef });
    const order = model.blocks.flatMap((block) => (['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const).map((p) => block[p].layer.adapter!.dropout));
    expect(seen.map((s) => s.mask === undefined)).toEqual(order.map((p) => p === 0));
    const withDropout = seen.flatMap((s, i) => (order[i]! > 0 ? [{ ...s, p: order[i]! }] : []));
    const expected = sequentialMasks(0xfeedbeef, withDropout);
    withDropout.forEach((s, i) => expect(expandDropoutMask(s.mask!, s.length, s.p), `layer ${i}`).toEqual(expected[i]));

    seen.length = 0;
    await model.forward(batch);
    expect(seen.every((s) => s.mask === undefined)).toBe(true);
  });
});
