// The frozen weights quantized on the device (src/runtime/cuda/device-quantize.ts), on the
// simulated device, whose quantize and pack kernels are the templates' arithmetic transcribed
// (simulated-quantize.ts), not the host RTN: for ragged shapes at 2, 3, 4 and 8 bits, symmetric
// and asymmetric, every scale dtype (a spec has one: fp16 by default), the device's codes, scales and zeros are the host
// quantizeProjection's bit for bit — exact ties, all-zero and all-positive groups, a symmetric
// group's extreme on its tie included — and the linear kernels bind them as they were made (no
// upload); a scale too small for fp16 is refused as on the host; QALC_CUDA_QUANTIZE=device
// without quantize kernels is refused. Then whole models: stories260K trained on the simulated
// cuda port gives the same losses with its checkpoint's floats quantized on the device as on the
// host, and so does a random-weights run (the draws on the host, the RTN on the device).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CudaManifestKernel, ModelOpManifestKernel } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import type { Bits, QuantizedWeight } from '../../../src/quant/quantized-weight.ts';
import { ScaleRangeError, type ScaleDtype } from '../../../src/quant/scale-dtype.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { deviceOps, linearOptionsFromEnvironment } from '../../../src/runtime/cuda/device-ops.ts';
import type { QuantizePath } from '../../../src/runtime/cuda/device-quantize.ts';
import type { TrainingOps } from '../../../src/runtime/ops.ts';
import type { QaLoraLinear } from '../../../src/runtime/typescript/qalora-linear.ts';
import { quantizeProjection } from '../../../src/train/quantize-projection.ts';
import { train } from '../../../src/train/trainer.ts';
import { rtnCornerWeights } from '../../support/rtn-corner-weights.ts';
import { caseName, syntheticPlan, type KernelCase } from '../../ir/kernel-cases.ts';
import { planFrom } from '../../support/inline-spec.ts';
import { shakespeareSlice, TOK512 } from '../../train/tiny-model.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';
import { stories260kCudaSpec } from './stories260k-cuda-spec.ts';

const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });

interface Compiled {
  readonly plan: Plan;
  readonly cuda: CudaManifestKernel[];
  readonly modelOps: readonly ModelOpManifestKernel[];
}

async function compiledFor(plan: Plan): Promise<Compiled> {
  const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
  return { plan, cuda: manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda'), modelOps: manifest.modelOps };
}

/** The cuda backend's ops over a fresh simulated device, quantizing where `path` says. */
function opsOn(compiled: Compiled, path: QuantizePath, quantizeKernels = true) {
  const device = new SimulatedModelOpDevice(compiled.cuda, compiled.modelOps);
  const roles = ['quantize', 'pack'];
  const kernels = {
    kernels: compiled.cuda.filter((k) => !roles.includes(k.role)).map(image),
    quantize: quantizeKernels ? compiled.cuda.filter((k) => roles.includes(k.role)).map(image) : [],
    modelOps: compiled.modelOps.map(image),
  };
  return { device, ops: deviceOps(device, kernels, cpuBackend().ops, 'bf16', { ...linearOptionsFromEnvironment(), quantize: path }) };
}

// Ragged shapes (K, N not multiples of a tile or a warp), every bit width, both symmetries.
const CASES: readonly (KernelCase & { readonly scaleDtype: ScaleDtype })[] = [
  { inFeatures: 172, outFeatures: 64, bits: 4, group: 43, scaleDtype: 'fp16' },
  { inFeatures: 64, outFeatures: 172, bits: 2, group: 16, scaleDtype: 'bf16' },
  { inFeatures: 96, outFeatures: 40, bits: 3, group: 32, scaleDtype: 'fp32' },
  { inFeatures: 128, outFeatures: 40, bits: 8, group: 64, scaleDtype: 'fp16' },
  { inFeatures: 96, outFeatures: 24, bits: 3, group: 16, symmetric: true, scaleDtype: 'fp16' },
  { inFeatures: 96, outFeatures: 37, bits: 4, group: 32, symmetric: true, scaleDtype: 'bf16' },
  { inFeatures: 192, outFeatures: 24, bits: 8, group: 64, symmetric: true, scaleDtype: 'fp32' },
  { inFeatures: 96, outFeatures: 24, bits: 2, group: 32, symmetric: true, scaleDtype: 'fp32' },
];

const weightOf = (c: KernelCase, seed: number): Float32Array => rtnCornerWeights(c.inFeatures, c.outFeatures, c.group, seed);

const hostQuantized = (name: string, c: KernelCase & { readonly scaleDtype: ScaleDtype }, w: Float32Array): QuantizedWeight =>
  quantizeProjection(name, c.outFeatures, c.inFeatures, { bits: c.bits, group: c.group, symmetric: c.symmetric ?? false, scaleDtype: c.scaleDtype, adapter: null },
    (o, into) => into.set(w.subarray(o * c.inFeatures, (o + 1) * c.inFeatures)));

describe('frozen weights quantized on the device', () => {
  let compiled: Compiled;
  beforeAll(async () => {
    compiled = await compiledFor(syntheticPlan(CASES));
  });

  it.each(CASES.map((c, index) => [caseName(c), c, index] as const))('%s: codes, scales and zeros are the host RTN\'s bit for bit', (name, c, index) => {
    const { ops } = opsOn(compiled, 'device');
    const quantizer = ops.frozenQuantizer!();
    const w = weightOf(c, 40 + index);
    const device = quantizer.quantize(name, w, c.outFeatures, c.inFeatures, { bits: c.bits as Bits, group: c.group, symmetric: c.symmetric ?? false, scaleDtype: c.scaleDtype });
    quantizer.close();
    const host = hostQuantized(name, c, w);
    expect(Array.from(device.q)).toEqual(Array.from(host.q));
    expect(Array.from(device.zeros)).toEqual(Array.from(host.zeros));
    expect(Array.from(device.scales)).toEqual(Array.from(host.scales));
    expect([device.inFeatures, device.outFeatures, device.groupSize, device.bits]).toEqual([host.inFeatures, host.outFeatures, host.groupSize, host.bits]);
  });

  it('the linear kernels bind the device-made buffers as they are: the same outputs as the host\'s weight, nothing uploaded for them', async () => {
    const c = CASES[0]!, name = caseName(c);
    const w = weightOf(c, 7);
    const x = Float32Array.from({ length: 5 * c.inFeatures }, (_, i) => Math.sin(i) * 0.5);
    const forward = async (make: (ops: TrainingOps) => QuantizedWeight) => {
      const { ops, device } = opsOn(compiled, 'device');
      const weight = make(ops);
      const layer: QaLoraLinear = { base: { kind: 'quantized', weight }, adapter: null };
      const uploads = countUploads(device);
      const y = new Float32Array(5 * c.outFeatures);
      await ops.qaloraLinearForward(y, x, 5, layer);
      await ops.syncToHost([y]);
      return { y, frozenBytes: uploads.bytes() };
    };
    const onDevice = await forward((ops) => {
      const quantizer = ops.frozenQuantizer!();
      try {
        return quantizer.quantize(name, w, c.outFeatures, c.inFeatures, { bits: 4, group: c.group, symmetric: false, scaleDtype: 'fp16' });
      } finally {
        quantizer.close();
      }
    });
    const onHost = await forward(() => hostQuantized(name, c, w));
    expect(Array.from(onDevice.y)).toEqual(Array.from(onHost.y));
    // The host's weight uploads qweight and the scales and zeros; the device's uploads only x.
    const frozen = (Math.ceil((c.inFeatures * 4) / 32) * c.outFeatures + 2 * (c.inFeatures / c.group) * c.outFeatures) * 4;
    expect(onHost.frozenBytes - onDevice.frozenBytes).toBe(frozen);
  });

  it('refuses a scale fp16 cannot hold, as the host does (ScaleRangeError)', () => {
    const c = CASES[0]!, name = caseName(c);
    const tiny = weightOf(c, 9).map((v) => v * 1e-6);
    const { ops } = opsOn(compiled, 'device');
    const quantizer = ops.frozenQuantizer!();
    const onDevice = () => quantizer.quantize(name, tiny, c.outFeatures, c.inFeatures, { bits: 4, group: c.group, symmetric: false, scaleDtype: 'fp16' });
    expect(onDevice).toThrow(ScaleRangeError);
    expect(() => hostQuantized(name, c, tiny)).toThrow(ScaleRangeError);
    let host = '', device = '';
    try { hostQuantized(name, c, tiny); } catch (e) { host = (e as Error).message; }
    try { onDevice(); } catch (e) { device = (e as Error).message; }
    expect(device).toBe(host);
    quantizer.close();
  });

  it('QALC_CUDA_QUANTIZE=device without quantize kernels is refused; host and auto quantize on the host', () => {
    expect(() => opsOn(compiled, 'device', false)).toThrow(/QALC_CUDA_QUANTIZE=device, but the compiled kernels have no quantize kernels/);
    expect(opsOn(compiled, 'auto', false).ops.frozenQuantizer).toBeUndefined();
    expect(opsOn(compiled, 'host').ops.frozenQuantizer).toBeUndefined();
    expect(opsOn(compiled, 'auto').ops.frozenQuantizer).toBeDefined();
  });

  it('refuses a layer whose quantization has no compiled kernel, naming it', () => {
    const { ops } = opsOn(compiled, 'device');
    const quantizer = ops.frozenQuantizer!();
    const c = CASES[0]!;
    expect(() => quantizer.quantize(caseName(c), weightOf(c, 1), c.outFeatures, c.inFeatures, { bits: 4, group: c.group, symmetric: true, scaleDtype: 'fp16' }))
      .toThrow(/no compiled quantize kernel for 4 bits, group 43, symmetric, 172 × 64 .*QALC_CUDA_QUANTIZE=host/);
    quantizer.close();
  });
});

/** Bytes uploaded to `device` from now on. */
function countUploads(device: SimulatedModelOpDevice): { bytes(): number } {
  let bytes = 0;
  const alloc = device.alloc.bind(device);
  device.alloc = (size) => {
    const buffer = alloc(size);
    const upload = buffer.upload;
    return { ...buffer, upload: (source: ArrayBufferView) => { bytes += source.byteLength; upload(source); } };
  };
  return { bytes: () => bytes };
}

describe('whole models on the simulated cuda port, their frozen weights quantized on the device', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qalc-device-quantize-'));
  /** The run's losses, and how many projections the device quantized (its quantize and pack launches). */
  const losses = async (compiled: Compiled, path: QuantizePath, name: string, more: Partial<Parameters<typeof train>[0]> = {}) => {
    const out = join(dir, name);
    const { ops, device } = opsOn(compiled, path);
    await train({ plan: compiled.plan, specDir: dir, out, evalBatches: 1, ops, ...more });
    const launched = (entry: string) => device.launched.filter((symbol) => symbol.endsWith(`__${entry}`)).length;
    return {
      losses: readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { loss: number }).loss),
      quantized: [launched('quantizeRtn'), launched('packQweight')],
    };
  };

  it('stories260K (a float llama2.c checkpoint) trains to the same losses as with its weights quantized on the host', async () => {
    const specPath = join(dir, 'stories260k-cuda.qal');
    writeFileSync(specPath, stories260kCudaSpec());
    const front = frontEnd(specPath);
    if (front.plan === undefined) throw new Error(front.diagnostics.map((d) => d.message).join('\n'));
    const compiled = await compiledFor(front.plan);
    const device = await losses(compiled, 'device', 'stories-device');
    const host = await losses(compiled, 'host', 'stories-host');
    // 5 blocks of 7 projections, each quantized and packed once on the device; none with QALC_CUDA_QUANTIZE=host.
    expect(device.quantized).toEqual([35, 35]);
    expect(host.quantized).toEqual([0, 0]);
    expect(device.losses).toHaveLength(2);
    expect(device.losses).toEqual(host.losses);
  }, 60_000);

  it('random weights (drawn on the host, quantized on the device) train to the host-quantized run\'s losses', async () => {
    const data = shakespeareSlice(dir, 20_000);
    const plan = planFrom(join(dir, 'shaped.qal'), `spec shaped
model {
  dim = 64  hidden_dim = 128  layers = 2  heads = 4  kv_heads = 2  vocab = 512  context = 32
  tokenizer = "${TOK512}"
}
quant { bits = 4  group = 16  scale = fp16 }
override proj down { bits = 3  group = 32  symmetric = true }
adapter { rank = 4  alpha = 8 }
target cuda { arch = [sm_90a]  activation = bf16 }
train {
  data = "${data}"
  seq_len = 16
  batch = 2
  steps = 2
  lr = 1e-2
  seed = 3
  eval_every = 100
}
`);
    const compiled = await compiledFor(plan);
    const device = await losses(compiled, 'device', 'random-device', { randomWeights: {} });
    const host = await losses(compiled, 'host', 'random-host', { randomWeights: {} });
    expect(device.quantized).toEqual([14, 14]);
    expect(host.quantized).toEqual([0, 0]);
    expect(device.losses).toHaveLength(2);
    expect(device.losses).toEqual(host.losses);
  });
});
