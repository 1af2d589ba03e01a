// Every op of the WebGPU training backend against the TypeScript reference op, on small ragged
// shapes (so the kernels' bounds checks matter): each case builds its inputs from a fixed seed,
// runs forward then backward (backwards accumulate into non-zero gradients), and every array it
// wrote must agree to 1e-5 relative error, norm-wise — read back with syncToHost, since the
// WebGPU ops leave what they write on the device.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Pooling } from '../../../src/reference/adapter.ts';
import { createRng, type Rng } from '../../../src/reference/random.ts';
import type { Bits } from '../../../src/quant/quantized-weight.ts';
import { quantizeRtn } from '../../../src/quant/rtn.ts';
import { openWebGpu, type WebGpuHandle } from '../../../src/runtime/webgpu/device.ts';
import { webGpuOps } from '../../../src/runtime/webgpu/webgpu-ops.ts';
import type { AttentionShape } from '../../../src/train/ops/attention.ts';
import type { Floats } from '../../../src/train/ops/floats.ts';
import type { AdapterActivations, FrozenWeight, QaLoraLinear } from '../../../src/train/ops/qalora-linear.ts';
import { ropeTables } from '../../../src/train/ops/rope.ts';
import { TYPESCRIPT_OPS, type TrainingOps } from '../../../src/train/ops/training-ops.ts';
import { normRelativeError } from './support.ts';

const TOLERANCE = 1e-5;

let gpu: WebGpuHandle;
let gpuOps: TrainingOps;

beforeAll(async () => {
  gpu = await openWebGpu();
  gpuOps = webGpuOps(gpu.device);
});

afterAll(() => gpu?.destroy());

function randomFloats(rng: Rng, length: number, scale = 1): Float32Array {
  return Float32Array.from({ length }, () => scale * rng.normal());
}

/** Runs `run(ops)` with the TypeScript ops and with WebGPU's, and compares what it returns. */
async function compare(label: string, run: (ops: TrainingOps) => Promise<Record<string, Floats | number>>): Promise<void> {
  const expected = await run(TYPESCRIPT_OPS);
  const actual = await run(gpuOps);
  await gpuOps.syncToHost(Object.values(actual).filter((value): value is Floats => typeof value !== 'number'));
  for (const [name, value] of Object.entries(expected)) {
    const error = typeof value === 'number'
      ? Math.abs((actual[name] as number) - value) / Math.max(1, Math.abs(value))
      : normRelativeError(actual[name] as Floats, value);
    expect(error, `${label}: ${name}`).toBeLessThanOrEqual(TOLERANCE);
  }
}

describe('WebGPU training ops match the TypeScript ops', () => {
  it('embedding, 11 tokens × 7 channels from a vocabulary of 13', async () => {
    await compare('embedding', async (ops) => {
      const rng = createRng(1);
      const table = randomFloats(rng, 13 * 7), tokens = Array.from({ length: 11 }, () => rng.int(13));
      const out = new Float32Array(11 * 7);
      await ops.embeddingForward(out, tokens, table, 11, 7);
      return { out };
    });
    await expect(gpuOps.embeddingForward(new Float32Array(7), [13], new Float32Array(13 * 7), 1, 7)).rejects.toThrow(/token 13 at index 0 is outside the vocabulary of 13/);
  });

  it.each([[1, 7], [37, 65]])('rmsnorm forward and backward, %i rows × %i channels', async (rows, channels) => {
    await compare(`rmsnorm ${rows}×${channels}`, async (ops) => {
      const rng = createRng(rows * 1000 + channels);
      const x = randomFloats(rng, rows * channels, 2), weight = randomFloats(rng, channels, 0.3), dy = randomFloats(rng, rows * channels);
      const out = new Float32Array(rows * channels), rstd = new Float32Array(rows), dx = randomFloats(rng, rows * channels);
      await ops.rmsnormForward(out, rstd, x, weight, rows, channels);
      await ops.rmsnormBackward(dx, dy, x, weight, rstd, rows, channels);
      return { out, rstd, dx };
    });
  });

  it.each([[2, 9, 3, 6], [3, 17, 5, 10]])('RoPE forward and backward, B=%i T=%i heads=%i headSize=%i', async (B, T, heads, headSize) => {
    await compare(`rope ${B}×${T}`, async (ops) => {
      const rng = createRng(B * T * heads);
      const tables = ropeTables(headSize, 40);
      const width = heads * headSize;
      const x = randomFloats(rng, B * T * width), dx = randomFloats(rng, B * T * width);
      await ops.ropeForward(x, tables, B, T, width);
      await ops.ropeBackward(dx, tables, B, T, width);
      return { x, dx };
    });
  });

  it.each([
    { batch: 2, seqLen: 11, heads: 4, kvHeads: 2, headSize: 6 },
    { batch: 3, seqLen: 13, heads: 6, kvHeads: 2, headSize: 5 },
    { batch: 1, seqLen: 7, heads: 3, kvHeads: 3, headSize: 4 },
  ])('attention forward and backward, %o', async (shape: AttentionShape) => {
    await compare('attention', async (ops) => {
      const rng = createRng(shape.seqLen * 31 + shape.heads);
      const rows = shape.batch * shape.seqLen, qw = shape.heads * shape.headSize, kvw = shape.kvHeads * shape.headSize;
      const q = randomFloats(rng, rows * qw), k = randomFloats(rng, rows * kvw), v = randomFloats(rng, rows * kvw);
      const out = new Float32Array(rows * qw), probs = new Float32Array(shape.batch * shape.heads * shape.seqLen * shape.seqLen);
      const dOut = randomFloats(rng, rows * qw);
      const dq = randomFloats(rng, rows * qw), dk = randomFloats(rng, rows * kvw), dv = randomFloats(rng, rows * kvw);
      await ops.attentionForward(out, probs, q, k, v, shape);
      await ops.attentionBackward(dq, dk, dv, dOut, q, k, v, probs, shape);
      return { out, probs, dq, dk, dv };
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

  it.each([[5, 7, 11], [33, 24, 97]])('lm_head forward and backward, %i rows × %i channels → %i', async (rows, channels, vocab) => {
    await compare('lm_head', async (ops) => {
      const rng = createRng(rows + channels + vocab);
      const x = randomFloats(rng, rows * channels), classifier = randomFloats(rng, vocab * channels), dLogits = randomFloats(rng, rows * vocab);
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

  it('cross-entropy refuses a target outside the vocabulary, as the TypeScript op does', async () => {
    await expect(gpuOps.crossEntropyForward(new Float32Array(6), new Float32Array(6), [1, 3], undefined, 2, 3)).rejects.toThrow(/target 3 at row 1 is outside the vocabulary of 3/);
  });
});

interface LinearCase {
  readonly name: string;
  readonly rows: number;
  readonly K: number;
  readonly N: number;
  readonly group: number;
  readonly bits: Bits | null; // null: dense base
  readonly rank: number; // 0: no adapter
  readonly pooling?: Pooling;
  readonly dropout?: number;
  readonly fractionalZeros?: boolean;
}

const LINEAR_CASES: LinearCase[] = [
  { name: '4-bit, group 16, rank 4, mean', rows: 19, K: 64, N: 41, group: 16, bits: 4, rank: 4, pooling: 'mean' },
  { name: '3-bit, group 7 (ragged), rank 3, sum, dropout', rows: 19, K: 35, N: 13, group: 7, bits: 3, rank: 3, pooling: 'sum', dropout: 0.3 },
  { name: '2-bit, group 43, rank 5, merged (fractional) zeros', rows: 8, K: 172, N: 23, group: 43, bits: 2, rank: 5, fractionalZeros: true },
  { name: '8-bit (codes up to 255), group 6, no adapter', rows: 21, K: 30, N: 17, group: 6, bits: 8, rank: 0 },
  { name: 'dense base, rank 4, dropout', rows: 23, K: 24, N: 9, group: 8, bits: null, rank: 4, dropout: 0.5 },
  { name: 'dense base, no adapter, one row', rows: 1, K: 5, N: 3, group: 1, bits: null, rank: 0 },
];

describe('WebGPU QA-LoRA linear matches the TypeScript op', () => {
  it.each(LINEAR_CASES)('$name: y, u, v, dx, dA, dB', async (c) => {
    await compare(c.name, async (ops) => {
      const rng = createRng(c.K * 7 + c.N);
      const weight = Float64Array.from({ length: c.K * c.N }, () => 0.2 * rng.normal());
      let base: FrozenWeight;
      if (c.bits === null) {
        base = { kind: 'dense', inFeatures: c.K, outFeatures: c.N, weight: Float32Array.from(weight) };
      } else {
        const quantized = quantizeRtn(weight, c.K, c.N, { bits: c.bits, groupSize: c.group });
        if (c.fractionalZeros) for (let i = 0; i < quantized.zeros.length; i++) quantized.zeros[i] += rng.uniform(-0.5, 0.5);
        base = { kind: 'quantized', weight: quantized };
      }
      const groups = c.K / c.group;
      const layer: QaLoraLinear = {
        base,
        adapter: c.rank === 0 ? null : {
          groupSize: c.group, rank: c.rank, pooling: c.pooling ?? 'mean', scaling: 2 / c.rank, dropout: c.dropout ?? 0,
          a: randomFloats(rng, groups * c.rank, 0.5), b: randomFloats(rng, c.rank * c.N, 0.5),
          gradA: randomFloats(rng, groups * c.rank, 0.1), gradB: randomFloats(rng, c.rank * c.N, 0.1),
        },
      };
      const saved: AdapterActivations | undefined = c.rank === 0 ? undefined : {
        u: new Float32Array(c.rows * groups), v: new Float32Array(c.rows * c.rank),
        mask: c.dropout ? Uint8Array.from({ length: c.rows * groups }, () => (rng.next() < c.dropout! ? 0 : 1)) : undefined,
      };
      const x = randomFloats(rng, c.rows * c.K), dy = randomFloats(rng, c.rows * c.N);
      const y = new Float32Array(c.rows * c.N), dx = randomFloats(rng, c.rows * c.K);
      await ops.qaloraLinearForward(y, x, c.rows, layer, saved);
      await ops.qaloraLinearBackward(dx, dy, c.rows, layer, saved);
      return {
        y, dx,
        ...(saved && layer.adapter ? { u: saved.u, v: saved.v, dA: layer.adapter.gradA, dB: layer.adapter.gradB } : {}),
      };
    });
  });

  it('names the array whose type or length is wrong instead of reading past it', async () => {
    const layer: QaLoraLinear = { base: { kind: 'dense', inFeatures: 4, outFeatures: 2, weight: new Float32Array(8) }, adapter: null };
    await expect(gpuOps.qaloraLinearForward(new Float32Array(2), new Float32Array(3), 1, layer)).rejects.toThrow(/x has 3 elements, expected 4/);
    await expect(gpuOps.qaloraLinearForward(new Float64Array(2), new Float32Array(4), 1, layer)).rejects.toThrow(/float32; y is a Float64Array/);
  });
});
