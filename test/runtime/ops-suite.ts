// The op-table tests, written once over TrainingOps (src/runtime/ops.ts) and instantiated for
// every backend that supplies a table: each case builds its inputs from a fixed seed on small
// ragged shapes (group sizes that are not multiples of 4, odd widths, GQA, so bounds checks
// matter), runs forward then backward (backwards accumulate into non-zero gradients), and every
// array it wrote must agree with the TypeScript reference op; bad arguments are refused as the
// reference refuses them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../../src/reference/random.ts';
import type { TrainingOps } from '../../src/runtime/ops.ts';
import type { AttentionShape } from '../../src/runtime/typescript/attention.ts';
import type { Floats } from '../../src/runtime/typescript/floats.ts';
import { TYPESCRIPT_OPS } from '../../src/runtime/typescript/ops.ts';
import type { QaLoraLinear } from '../../src/runtime/typescript/qalora-linear.ts';
import { ropeTables } from '../../src/runtime/typescript/rope.ts';
import { linearCaseData, randomFloats, type LinearCase } from './linear-case.ts';

export type OpResults = Record<string, Floats | number>;

export interface OpsTarget {
  readonly ops: TrainingOps;
  /**
   * Runs `run` on the backend as it runs (reading back what stays on the device), once per
   * variant it has — the native CPU ops with one thread and with two: the first result is
   * compared with the reference, the others must equal it bit for bit.
   */
  variants(run: (ops: TrainingOps) => Promise<OpResults>): Promise<OpResults[]>;
  /** ‖got − ref‖ relative to the reference, as the backend is measured (max norm or L2). */
  readonly error: (got: ArrayLike<number>, ref: ArrayLike<number>) => number;
  readonly tolerance: number;
  close?(): void;
}

const LINEAR_CASES: LinearCase[] = [
  { name: '4-bit, group 16, rank 8, mean', rows: 37, K: 64, N: 41, group: 16, bits: 4, rank: 8, pooling: 'mean' },
  { name: '3-bit, group 7 (ragged), rank 3, sum, dropout', rows: 19, K: 35, N: 13, group: 7, bits: 3, rank: 3, pooling: 'sum', dropout: 0.3 },
  { name: '2-bit, group 43, rank 5, merged (fractional) zeros', rows: 8, K: 172, N: 23, group: 43, bits: 2, rank: 5, fractionalZeros: true },
  { name: '4-bit symmetric, fp16 scales, group 16, rank 4', rows: 13, K: 48, N: 19, group: 16, bits: 4, rank: 4, symmetricFp16: true },
  { name: '8-bit (codes up to 255), group 6, no adapter', rows: 21, K: 30, N: 17, group: 6, bits: 8, rank: 0 },
  { name: 'dense base, rank 4, dropout', rows: 23, K: 24, N: 9, group: 8, bits: null, rank: 4, dropout: 0.5 },
  { name: 'dense base, no adapter, one row', rows: 1, K: 5, N: 3, group: 1, bits: null, rank: 0 },
];

/** A call that may throw or reject, as a promise. */
const attempt = (call: () => unknown): Promise<unknown> => Promise.resolve().then(call);

export function describeTrainingOps(name: string, skip: boolean, open: () => Promise<OpsTarget>): void {
  describe.skipIf(skip)(`${name}: the training ops match the TypeScript ops`, () => {
    let target: OpsTarget;
    beforeAll(async () => {
      target = await open();
    }, 60_000);
    afterAll(() => target?.close?.());

    const compare = async (label: string, run: (ops: TrainingOps) => Promise<OpResults>): Promise<void> => {
      const expected = await run(TYPESCRIPT_OPS);
      const [first, ...others] = await target.variants(run);
      for (const [output, value] of Object.entries(expected)) {
        const actual = first![output];
        const error = typeof value === 'number' ? Math.abs((actual as number) - value) / Math.max(1, Math.abs(value)) : target.error(actual as Floats, value);
        expect(error, `${label}: ${output}`).toBeLessThanOrEqual(target.tolerance);
        for (const other of others) expect(other[output], `${label}: ${output}, a variant vs the first`).toEqual(actual);
      }
    };

    it('embedding, 11 tokens × 7 channels from a vocabulary of 13', async () => {
      await compare('embedding', async (ops) => {
        const rng = createRng(1);
        const table = randomFloats(rng, 13 * 7), tokens = Array.from({ length: 11 }, () => rng.int(13));
        const out = new Float32Array(11 * 7);
        await ops.embeddingForward(out, tokens, table, 11, 7);
        return { out };
      });
      await expect(attempt(() => target.ops.embeddingForward(new Float32Array(7), [13], new Float32Array(13 * 7), 1, 7))).rejects.toThrow(/token 13 at index 0 is outside the vocabulary of 13/);
    });

    it.each([[1, 7], [37, 65], [130, 43]])('rmsnorm forward and backward, %i rows × %i channels', async (rows, channels) => {
      await compare(`rmsnorm ${rows}×${channels}`, async (ops) => {
        const rng = createRng(rows * 1000 + channels);
        const x = randomFloats(rng, rows * channels, 2), weight = randomFloats(rng, channels, 0.3), dy = randomFloats(rng, rows * channels);
        const out = new Float32Array(rows * channels), rstd = new Float32Array(rows), dx = randomFloats(rng, rows * channels);
        await ops.rmsnormForward(out, rstd, x, weight, rows, channels, 1e-5);
        await ops.rmsnormBackward(dx, dy, x, weight, rstd, rows, channels);
        return { out, rstd, dx };
      });
    });

    // A model's own ε (config.json's rms_norm_eps), on inputs small enough that ε moves the result:
    // checked against the formula in float64, and against ε = 1e-5, which must give another answer.
    it('rmsnorm with the model\'s ε = 1e-6 matches float64, 29 rows × 37 channels', async () => {
      const rows = 29, channels = 37, eps = 1e-6;
      const rng = createRng(12);
      const x = randomFloats(rng, rows * channels, 2e-3), weight = randomFloats(rng, channels, 0.3);
      const run = async (ops: TrainingOps, epsilon: number) => {
        const out = new Float32Array(rows * channels), rstd = new Float32Array(rows);
        await ops.rmsnormForward(out, rstd, x, weight, rows, channels, epsilon);
        await ops.syncToHost([out, rstd]);
        return { out, rstd };
      };
      const expectedOut = new Float64Array(rows * channels), expectedRstd = new Float64Array(rows);
      for (let row = 0; row < rows; row++) {
        let sumSquares = 0;
        for (let j = 0; j < channels; j++) sumSquares += x[row * channels + j] ** 2;
        expectedRstd[row] = 1 / Math.sqrt(sumSquares / channels + eps);
        for (let j = 0; j < channels; j++) expectedOut[row * channels + j] = weight[j] * expectedRstd[row] * x[row * channels + j];
      }
      const got = await run(target.ops, eps);
      expect(target.error(got.out, expectedOut)).toBeLessThanOrEqual(target.tolerance);
      expect(target.error(got.rstd, expectedRstd)).toBeLessThanOrEqual(target.tolerance);
      const llama = await run(target.ops, 1e-5);
      expect(target.error(llama.out, expectedOut)).toBeGreaterThan(100 * target.tolerance);
    });

    // A model's own θ (rope_theta 500000, LLaMA 3's): the rotation against float64 angles, both ways.
    it('RoPE with the model\'s θ = 500000 matches float64 angles, B=2 T=37 heads=3 headSize=10', async () => {
      const B = 2, T = 37, heads = 3, headSize = 10, width = heads * headSize, theta = 500000;
      const rng = createRng(13);
      const x = randomFloats(rng, B * T * width), dy = randomFloats(rng, B * T * width);
      const rotated = (tables: ReturnType<typeof ropeTables>) => async () => {
        const forward = Float32Array.from(x), backward = Float32Array.from(dy);
        await target.ops.ropeForward(forward, tables, B, T, width);
        await target.ops.ropeBackward(backward, tables, B, T, width);
        await target.ops.syncToHost([forward, backward]);
        return { forward, backward };
      };
      const expected = (direction: 1 | -1, from: Float32Array) => {
        const out = new Float64Array(from.length);
        for (let row = 0; row < B * T; row++) {
          const pos = row % T;
          for (let i = 0; i < width; i += 2) {
            const angle = pos * theta ** (-(i % headSize) / headSize);
            const c = Math.cos(angle), s = direction * Math.sin(angle);
            const x0 = from[row * width + i], x1 = from[row * width + i + 1];
            out[row * width + i] = x0 * c - x1 * s;
            out[row * width + i + 1] = x0 * s + x1 * c;
          }
        }
        return out;
      };
      const tables = ropeTables(headSize, 40, theta);
      expect(tables.theta).toBe(theta);
      const got = await rotated(tables)();
      expect(target.error(got.forward, expected(1, x))).toBeLessThanOrEqual(target.tolerance);
      expect(target.error(got.backward, expected(-1, dy))).toBeLessThanOrEqual(target.tolerance);
      const llama = await rotated(ropeTables(headSize, 40, 10000))();
      expect(target.error(llama.forward, expected(1, x))).toBeGreaterThan(100 * target.tolerance);
    });

    it.each([[2, 9, 3, 6], [3, 17, 5, 10], [1, 33, 2, 64]])('RoPE forward and backward, B=%i T=%i heads=%i headSize=%i', async (B, T, heads, headSize) => {
      await compare(`rope ${B}×${T}`, async (ops) => {
        const rng = createRng(B * T * heads);
        const tables = ropeTables(headSize, 40, 10000);
        const width = heads * headSize;
        const x = randomFloats(rng, B * T * width), dx = randomFloats(rng, B * T * width);
        await ops.ropeForward(x, tables, B, T, width);
        await ops.ropeBackward(dx, tables, B, T, width);
        return { x, dx };
      });
    });

    it.each([
      { batch: 2, seqLen: 11, heads: 4, kvHeads: 2, headSize: 6 },
      { batch: 3, seqLen: 23, heads: 6, kvHeads: 3, headSize: 5 },
      { batch: 3, seqLen: 13, heads: 6, kvHeads: 2, headSize: 5 },
      { batch: 1, seqLen: 40, heads: 8, kvHeads: 4, headSize: 8 },
      { batch: 2, seqLen: 7, heads: 3, kvHeads: 3, headSize: 4 },
    ])('attention forward and backward, %o', async (shape: AttentionShape) => {
      await compare('attention', async (ops) => {
        const rng = createRng(shape.seqLen * 31 + shape.heads);
        const rows = shape.batch * shape.seqLen, qw = shape.heads * shape.headSize, kvw = shape.kvHeads * shape.headSize;
        const q = randomFloats(rng, rows * qw), k = randomFloats(rng, rows * kvw), v = randomFloats(rng, rows * kvw);
        const out = new Float32Array(rows * qw), saved = new Float32Array(ops.attentionSavedLength(shape));
        const dOut = randomFloats(rng, rows * qw);
        const dq = randomFloats(rng, rows * qw), dk = randomFloats(rng, rows * kvw), dv = randomFloats(rng, rows * kvw);
        await ops.attentionForward(out, saved, q, k, v, shape);
        await ops.attentionBackward(dq, dk, dv, dOut, q, k, v, out, saved, shape);
        // What the forward saves is the backend's own (probabilities, or a flash kernel's log-sum-exp).
        return { out, dq, dk, dv };
      });
    });

    it.each([1, 13, 1000])('SwiGLU forward and backward, %i elements', async (count) => {
      await compare(`swiglu ${count}`, async (ops) => {
        const rng = createRng(count);
        const gate = randomFloats(rng, count, 3), up = randomFloats(rng, count), dOut = randomFloats(rng, count);
        const out = new Float32Array(count), dGate = randomFloats(rng, count), dUp = randomFloats(rng, count);
        await ops.swigluForward(out, gate, up, count);
        await ops.swigluBackward(dGate, dUp, dOut, gate, up, count);
        return { out, dGate, dUp };
      });
    });

    it.each([[5, 7, 11], [64, 24, 97]])('lm_head forward and backward, %i rows × %i channels → %i', async (rows, channels, vocab) => {
      await compare('lm_head', async (ops) => {
        const rng = createRng(rows + channels + vocab);
        const x = randomFloats(rng, rows * channels), classifier = randomFloats(rng, vocab * channels), dLogits = randomFloats(rng, rows * vocab);
        dLogits[3] = 0; // a backward may skip zeros
        const logits = new Float32Array(rows * vocab), dx = randomFloats(rng, rows * channels);
        await ops.lmHeadForward(logits, x, classifier, rows, channels, vocab);
        await ops.lmHeadBackward(dx, dLogits, classifier, rows, channels, vocab);
        return { logits, dx };
      });
    });

    it.each([false, true])('cross-entropy forward and backward (loss mask: %s, ignored targets)', async (masked) => {
      await compare('cross-entropy', async (ops) => {
        const rng = createRng(masked ? 2 : 1);
        const rows = 29, vocab = 53;
        const logits = randomFloats(rng, rows * vocab, 4);
        const targets = Array.from({ length: rows }, (_, i) => (i % 7 === 3 ? -100 : rng.int(vocab)));
        const mask = masked ? Array.from({ length: rows }, (_, i) => (i % 3 === 0 ? 0 : 1)) : undefined;
        const probs = new Float32Array(rows * vocab), dLogits = randomFloats(rng, rows * vocab, 0.01);
        const { loss, counted } = await ops.crossEntropyForward(probs, logits, targets, mask, rows, vocab);
        await ops.crossEntropyBackward(dLogits, probs, targets, mask, rows, vocab, 0.5);
        return { loss, counted, probs, dLogits };
      });
    });

    // The reference is the unfused ops (TYPESCRIPT_OPS has no fused op); a backend without one is skipped.
    it.for([false, true])('lm_head and cross-entropy fused, where the backend has it: the unfused ops\' loss and dx (loss mask: %s)', async (masked, context) => {
      if (target.ops.lmHeadCrossEntropy === undefined) context.skip();
      await compare('lm_head + cross-entropy', async (ops) => {
        const rng = createRng(masked ? 4 : 3);
        const rows = 29, channels = 19, vocab = 53;
        const x = randomFloats(rng, rows * channels), classifier = randomFloats(rng, vocab * channels, 0.3), dx = randomFloats(rng, rows * channels);
        const targets = Array.from({ length: rows }, (_, i) => (i % 7 === 3 ? -100 : rng.int(vocab)));
        const mask = masked ? Array.from({ length: rows }, (_, i) => (i % 3 === 0 ? 0 : 1)) : undefined;
        const fused = ops.lmHeadCrossEntropy;
        if (fused !== undefined) {
          const { loss, counted } = await fused(dx, x, classifier, targets, mask, rows, channels, vocab, 0.5);
          return { loss, counted, dx };
        }
        const logits = new Float32Array(rows * vocab), probs = new Float32Array(rows * vocab), dLogits = new Float32Array(rows * vocab);
        await ops.lmHeadForward(logits, x, classifier, rows, channels, vocab);
        const { loss, counted } = await ops.crossEntropyForward(probs, logits, targets, mask, rows, vocab);
        await ops.crossEntropyBackward(dLogits, probs, targets, mask, rows, vocab, 0.5);
        await ops.lmHeadBackward(dx, dLogits, classifier, rows, channels, vocab);
        return { loss, counted, dx };
      });
    });

    it('cross-entropy refuses a target outside the vocabulary, as the TypeScript op does', async () => {
      await expect(attempt(() => target.ops.crossEntropyForward(new Float32Array(6), new Float32Array(6), [1, 3], undefined, 2, 3))).rejects.toThrow(/target 3 at row 1 is outside the vocabulary of 3/);
    });

    it.each(LINEAR_CASES)('QA-LoRA linear, $name: y, u, v, dx, dA, dB', async (c) => {
      await compare(c.name, async (ops) => {
        const data = linearCaseData(c);
        await ops.qaloraLinearForward(data.y, data.x, c.rows, data.layer, data.saved);
        await ops.qaloraLinearBackward(data.dx, data.dy, c.rows, data.layer, data.saved);
        return data.outputs();
      });
    });

    it('QA-LoRA linear names the array whose type or length is wrong instead of reading past it', async () => {
      const layer: QaLoraLinear = { base: { kind: 'dense', inFeatures: 4, outFeatures: 2, weight: new Float32Array(8) }, adapter: null };
      await expect(attempt(() => target.ops.qaloraLinearForward(new Float32Array(2), new Float32Array(3), 1, layer))).rejects.toThrow(/x has 3 elements, expected 4/);
      await expect(attempt(() => target.ops.qaloraLinearForward(new Float64Array(2), new Float32Array(4), 1, layer))).rejects.toThrow(/float32; y is a Float64Array/);
    });
  });
}
