// The cuda backend's fused lm_head + cross-entropy (device-ops.ts lmHeadCrossEntropy) on the
// simulated device (./simulated-model-ops.ts), against the four unfused TypeScript ops: ragged
// shapes (37 rows in chunks of 16, 16 and 5; 24 channels; vocab 999), masked rows and ignored
// targets; the loss and dx to bf16 rounding with bf16 activations (bf16 GEMM operands, the
// gradient rounded to bf16 by the kernel) and to float32 rounding with fp16 ones (float32 GEMMs,
// the gradient in place). Also the embedding gather from a 16-bit table, shared with a tied
// classifier.
import { describe, expect, it } from 'vitest';
import type { ModelOpManifestKernel } from '../../../src/backends/manifest.ts';
import { modelOpKernels } from '../../../src/backends/cuda/model-ops.ts';
import { bf16Value, f16Value } from '../../../src/runtime/cuda/host-data.ts';
import { deviceOps, lmHeadChunkRows } from '../../../src/runtime/cuda/device-ops.ts';
import type { GemmCall } from '../../../src/runtime/cuda/cuda.ts';
import { bf16Bits, f16Bits } from '../../../src/runtime/cuda/host-data.ts';
import { TYPESCRIPT_OPS } from '../../../src/runtime/typescript/ops.ts';
import { compileSpec } from '../../support/inline-spec.ts';
import { headCase, unfused } from '../lm-head-case.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const RAGGED = 'model { dim = 24  hidden_dim = 40  layers = 1  heads = 2  kv_heads = 1  vocab = 999  context = 64 }\nquant { bits = 4  group = 8 }\nadapter { rank = 2  alpha = 4 }';
const plan = compileSpec(RAGGED).plan!;
const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
const rows = 37, channels = 24, vocab = 999;
/** Three chunks: 16, 16 and 5 rows. */
const chunkBytes = vocab * 4 * 16;

function simulated(activation: 'bf16' | 'f16', withGemm = true) {
  const modelOps: ModelOpManifestKernel[] = modelOpKernels(plan, { precision: activation }).map((k) => ({ ...k, file: `cuda/ops/${k.kernel}.cu`, codeHash: '' }));
  const device = withGemm ? new SimulatedModelOpDevice([], modelOps) : new SimulatedModelOpDevice([], modelOps).withoutGemm();
  const gemms: string[] = [];
  if (withGemm) {
    const gemm = device.gemm!;
    Object.defineProperty(device, 'gemm', { value: (call: GemmCall) => { gemms.push(`${call.a.type}:${call.out.rows}×${call.out.columns}`); gemm(call); } });
  }
  const ops = deviceOps(device, { kernels: [], modelOps: modelOps.map(image) }, TYPESCRIPT_OPS, activation, { path: 'auto', lmHeadChunkBytes: chunkBytes });
  return { device, ops, gemms };
}

const worst = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let error = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    error = Math.max(error, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return error / scale;
};

describe('lm_head and cross-entropy fused on the cuda backend (simulated device)', () => {
  it('chunks rows as the vocabulary says: 512 rows of 32000 logits, every row of a small vocabulary', () => {
    expect(lmHeadChunkRows(32000)).toBe(512);
    expect(lmHeadChunkRows(512)).toBe(32768);
    expect(lmHeadChunkRows(vocab, chunkBytes)).toBe(16);
    expect(lmHeadChunkRows(10 ** 9)).toBe(1);
  });

  for (const [activation, entry, tolerance] of [['bf16', 'chunkGradientToActivation', 1e-2], ['f16', 'chunkGradient', 1e-5]] as const) {
    it(`gives the unfused ops' loss and dx, ${activation} activations (${entry}), ${rows} rows in chunks of 16`, async () => {
      const c = headCase(rows, channels, vocab, 5);
      const want = unfused(c, 'float32', 0.7);
      const { device, ops, gemms } = simulated(activation);
      const dx = c.dx.slice();
      const got = await ops.lmHeadCrossEntropy!(dx, c.x, c.classifier, c.targets, c.mask, rows, channels, vocab, 0.7);
      ops.syncToHost([dx]);
      expect(got.counted).toBe(want.counted);
      expect(Math.abs(got.loss - want.loss) / want.loss, activation).toBeLessThan(tolerance);
      // dx's own values are large beside the update: compare the update itself.
      const update = (values: ArrayLike<number>) => Float64Array.from({ length: values.length }, (_, i) => values[i]! - c.dx[i]!);
      expect(worst(update(dx), update(want.dx)), activation).toBeLessThan(tolerance * 2);
      expect(worst(update(dx), update(want.dx)), activation).toBeGreaterThan(activation === 'bf16' ? 1e-5 : 0); // bf16 operands, not f32
      expect(device.modelOpLaunches).toEqual([...Array(3).fill(`cross_entropy.${entry}`), 'cross_entropy.loss']);
      expect(device.modelOpRows).toEqual([16, 16, 5, rows]);
      const type = activation === 'bf16' ? 'bf16' : 'f32';
      expect(gemms).toEqual([16, 16, 5].flatMap((n) => [`${type}:${n}×${vocab}`, `${type}:${n}×${channels}`]));

      // The loss alone: the same logits, the same loss, no gradient GEMM.
      const before = device.modelOpLaunches.length;
      const lossOnly = await ops.lmHeadCrossEntropy!(undefined, c.x, c.classifier, c.targets, c.mask, rows, channels, vocab);
      expect(lossOnly.loss).toBe(got.loss);
      expect(device.modelOpLaunches.slice(before)).toEqual([...Array(3).fill('cross_entropy.chunkLoss'), 'cross_entropy.loss']);
      expect(gemms.slice(6)).toEqual([16, 16, 5].map((n) => `${type}:${n}×${vocab}`));
    });
  }

  it('leaves dx as it is when no row counts (loss NaN), and is not offered without cuBLAS', async () => {
    const c = headCase(rows, channels, vocab, 8);
    const { ops } = simulated('bf16');
    const dx = c.dx.slice();
    expect(await ops.lmHeadCrossEntropy!(dx, c.x, c.classifier, c.targets, new Uint8Array(rows), rows, channels, vocab)).toEqual({ loss: NaN, counted: 0 });
    ops.syncToHost([dx]);
    expect(dx).toEqual(c.dx);
    expect(simulated('bf16', false).ops.lmHeadCrossEntropy).toBeUndefined();
  });

  for (const [activation, decode, encode] of [['bf16', bf16Value, bf16Bits], ['f16', f16Value, f16Bits]] as const) {
    it(`gathers the embedding from a ${activation} table (the float32 stream from its rounded values), one copy with a tied classifier where lm_head is bf16`, async () => {
      const c = headCase(rows, channels, vocab, 3);
      const { device, ops } = simulated(activation);
      const tokens = Int32Array.from(c.targets, (t, r) => (t >= 0 ? t : r));
      const out = new Float32Array(rows * channels);
      ops.embeddingForward(out, tokens, c.classifier, rows, channels);
      ops.syncToHost([out]);
      expect(device.modelOpLaunches).toEqual(['embedding.forwardFromActivationTable']);
      const want = Float32Array.from({ length: rows * channels }, (_, i) => decode(encode(c.classifier[tokens[Math.floor(i / channels)]! * channels + (i % channels)]!)));
      expect(out).toEqual(want);
      // A tied classifier is the table itself: lm_head's bf16 GEMM reads the embedding's bf16 copy (fp16 activations: lm_head's GEMM is float32, a copy of its own).
      const peakAfterHead = async (classifier: Float32Array) => {
        const { ops } = simulated(activation);
        ops.embeddingForward(new Float32Array(rows * channels), tokens, c.classifier, rows, channels);
        await ops.lmHeadCrossEntropy!(undefined, c.x, classifier, c.targets, c.mask, rows, channels, vocab);
        return ops.deviceStats!().peakBytes;
      };
      expect(await peakAfterHead(c.classifier.slice()) - await peakAfterHead(c.classifier)).toBe(activation === 'bf16' ? vocab * channels * 2 : 0);
    });
  }
});
