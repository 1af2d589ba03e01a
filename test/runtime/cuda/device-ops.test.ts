// The cuda backend with every op on the device, on the simulated device (./simulated-model-ops.ts)
// standing in for the GPU: two training steps of stories260K (4-bit, group 16 / 43, rank 4,
// batch 2 × 16) give the cpu backend's losses to bf16 rounding, with every op a kernel launch —
// the linear layers on their compiled kernels, the rest on the model-op kernels, AdamW too — and
// the values kept on the device between ops (the host syncs only what the model hands out), the
// dropout multipliers made there from each layer's draws; the same with the linear layers forced
// onto dequantize + cuBLAS (QALC_CUDA_LINEAR=gemm), and forced so on a port without a GEMM (they
// stay on the fused kernels). With cuBLAS, lm_head and the cross-entropy run fused by chunks of rows;
// the embedding table is bf16 on the device.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CudaManifestKernel, ModelOpManifestKernel } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { profiledDeviceOps } from '../../../src/runtime/cuda/backend.ts';
import type { GemmCall } from '../../../src/runtime/cuda/cuda.ts';
import { deviceOps, describeDeviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { lmHeadBackward, lmHeadForward } from '../../../src/runtime/typescript/lm-head.ts';
import type { TrainingOps } from '../../../src/runtime/ops.ts';
import { train } from '../../../src/train/trainer.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';
import { stories260kCudaSpec } from './stories260k-cuda-spec.ts';

const dir = mkdtempSync(join(tmpdir(), 'qalc-cuda-device-ops-'));
const specPath = join(dir, 'stories260k-cuda.qal');
writeFileSync(specPath, stories260kCudaSpec());

async function losses(ops: TrainingOps, name: string, plan: Parameters<typeof train>[0]['plan'], more: { steps?: number; resume?: boolean } = {}): Promise<number[]> {
  const out = join(dir, name);
  await train({ plan, specDir: dir, out, evalBatches: 1, ops, ...more });
  return readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { loss: number }).loss);
}

let compiledOnce: Promise<{ plan: Plan; linear: CudaManifestKernel[]; modelOps: readonly ModelOpManifestKernel[] }> | undefined;
/** The spec's plan and its kernels' manifests (compiled once for the file). */
function compiled() {
  return (compiledOnce ??= (async () => {
    const front = frontEnd(specPath);
    if (front.plan === undefined) throw new Error(front.diagnostics.map((d) => d.message).join('\n'));
    const { manifest } = await loadCompiledKernels(front.plan, { targets: ['cuda'] });
    return { plan: front.plan, linear: manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda'), modelOps: manifest.modelOps };
  })());
}
const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });

// With cuBLAS (the port's gemm: lm_head's two matmuls, bf16 operands) and without (lm_head's own kernel).
describe.each([['cuBLAS', true], ['no cuBLAS', false]] as const)('cuda backend, every op on the (simulated) device, %s', (name, blas) => {
  it('trains stories260K to the cpu backend\'s losses (bf16 rounding), each op a kernel', async () => {
    const { plan, linear, modelOps } = await compiled();
    const port = () => (blas ? new SimulatedModelOpDevice(linear, modelOps) : new SimulatedModelOpDevice(linear, modelOps).withoutGemm());
    const device = port();
    const kernels = { kernels: linear.map(image), modelOps: modelOps.map(image) };
    const ops = deviceOps(device, kernels, cpuBackend().ops, 'bf16');
    const gpu = await losses(ops, `cuda-${blas}`, plan);
    const cpu = await losses(cpuBackend().ops, `cpu-${blas}`, plan);
    console.log(`losses on the simulated device ${gpu.map((l) => l.toFixed(5)).join(', ')}, cpu ${cpu.map((l) => l.toFixed(5)).join(', ')}; ${describeDeviceOps(ops)}`);
    expect(gpu).toHaveLength(2);
    gpu.forEach((loss, i) => expect(Math.abs(loss - cpu[i]!) / cpu[i]!).toBeLessThan(5e-3));
    expect(ops.stats.fallbackForward + ops.stats.fallbackBackward).toBe(0);
    // summary.json records the device's measurements: what it allocated (activations, frozen weights, pools) and its launches.
    const { device: measured } = JSON.parse(readFileSync(join(dir, `cuda-${blas}`, 'summary.json'), 'utf8')) as { device: { peakBytes: number; launches: number } };
    expect(measured.peakBytes).toBeGreaterThan(1e5);
    expect(measured.launches).toBe(ops.launches());
    // A new process resumes from the checkpoint: adapters and AdamW's moments go back to a fresh device.
    const resumedDevice = port();
    const resumed = await losses(deviceOps(resumedDevice, kernels, cpuBackend().ops, 'bf16'), `cuda-${blas}`, plan, { steps: 3, resume: true });
    const cpuResumed = await losses(cpuBackend().ops, `cpu-${blas}`, plan, { steps: 3, resume: true });
    expect(resumed).toHaveLength(3);
    expect(Math.abs(resumed[2]! - cpuResumed[2]!) / cpuResumed[2]!).toBeLessThan(5e-3);
    const launched = new Set(device.modelOpLaunches);
    // lm_head and the cross-entropy fused where cuBLAS is (the trainer's forwards need only the loss): chunks of logits, never the whole.
    const crossEntropy = blas ? ['cross_entropy.chunkGradientToActivation', 'cross_entropy.chunkLoss', 'cross_entropy.loss'] : ['cross_entropy.forward', 'cross_entropy.backward'];
    for (const op of ['embedding.forwardFromActivationTable', 'rmsnorm.forward', 'rmsnorm.forwardToActivationKeepingInput', 'rmsnorm.backwardFromActivation', 'rope.forwardInActivation', 'rope.backward', 'attention.forward', 'attention.backward_dq',
      'attention.backward_dkdv', 'swiglu.forwardInActivation', 'swiglu.backwardFromActivation', 'residual.addFromActivation', ...crossEntropy,
      'convert.toActivation', 'convert.accumulateFromActivation', 'sum_squares.partials', 'adamw.step', 'dropout.multipliers']) expect(launched, op).toContain(op);
    if (blas) expect(launched).not.toContain('cross_entropy.forward');
    // lm_head: two GEMMs a step (forward and backward) on cuBLAS, or its kernel's two entry points; never both.
    for (const d of [device, resumedDevice]) {
      const gemms = d.launched.filter((l) => l === 'gemm').length;
      const kernels = d.modelOpLaunches.filter((l) => l.startsWith('lm_head.'));
      if (blas) {
        expect(gemms, name).toBeGreaterThanOrEqual(2);
        expect(kernels).toEqual([]);
      } else {
        expect(gemms, name).toBe(0);
        expect(new Set(kernels)).toEqual(new Set(['lm_head.forward', 'lm_head.backward']));
      }
    }
  }, 120_000);

  it('profiled (QALC_CUDA_PROFILE), charges each step\'s time to linear, attention and the other ops', async () => {
    const front = frontEnd(specPath);
    const plan = front.plan!;
    const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
    const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
    const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
    const device = blas ? new SimulatedModelOpDevice(linear, manifest.modelOps) : new SimulatedModelOpDevice(linear, manifest.modelOps).withoutGemm();
    const { ops } = profiledDeviceOps(device, { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpuBackend().ops, 'bf16');
    const out = join(dir, `profiled-${blas}`);
    await train({ plan, specDir: dir, out, evalBatches: 1, ops, steps: 1 });
    const [record] = readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { seconds: number; profile_ms: Record<string, number> });
    for (const kind of ['linear', 'attention', blas ? 'gemm' : 'lm_head', 'other', 'host']) expect(record!.profile_ms[kind], kind).toBeGreaterThan(0);
    const charged = Object.values(record!.profile_ms).reduce((a, b) => a + b, 0);
    expect(charged / 1000).toBeLessThanOrEqual(record!.seconds * 1.01);
    const { device: measured } = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { device: { profile: { name: string; kind: string }[] } };
    expect(measured.profile.find((e) => e.kind === 'attention')?.name).toMatch(/^attention_/);
  }, 120_000);

  // Once, not per describe.each case: it runs both ports itself.
  it.runIf(blas)('trains to the same losses with the linear layers on dequantize + cuBLAS, and on a port without a GEMM', async () => {
    const { plan, linear, modelOps } = await compiled();
    const kernels = { kernels: linear.map(image), modelOps: modelOps.map(image) };
    const cpu = await losses(cpuBackend().ops, 'cpu-gemm', plan);
    for (const device of [new SimulatedModelOpDevice(linear, modelOps), new SimulatedModelOpDevice(linear, modelOps).withoutGemm()]) {
      const ops = deviceOps(device, kernels, cpuBackend().ops, 'bf16', { path: 'gemm' });
      const gpu = await losses(ops, device.gemm ? 'cuda-gemm' : 'cuda-no-gemm', plan);
      console.log(`losses ${gpu.map((l) => l.toFixed(5)).join(', ')}, cpu ${cpu.map((l) => l.toFixed(5)).join(', ')}; ${describeDeviceOps(ops)}`);
      gpu.forEach((loss, i) => expect(Math.abs(loss - cpu[i]!) / cpu[i]!).toBeLessThan(5e-3));
      const { compiledForward, compiledBackward, gemmForward, gemmBackward, fallbackForward, fallbackBackward } = ops.stats;
      expect(fallbackForward + fallbackBackward).toBe(0);
      expect([gemmForward, gemmBackward]).toEqual(device.gemm ? [compiledForward, compiledBackward] : [0, 0]);
      expect(compiledForward).toBeGreaterThan(0);
      expect(device.launched.includes('gemm')).toBe(device.gemm !== undefined);
      // dx += c·unpool(du) of each adapted layer's GEMM-path backward: the unpool op, once a call —
      // overwriting dx where that is known zero (down, gate, o and q of each block: 4 of 7 calls).
      const unpools = device.modelOpLaunches.filter((op) => op === 'unpool.accumulate' || op === 'unpool.overwrite');
      expect(unpools).toHaveLength(device.gemm ? gemmBackward : 0);
      expect(unpools.filter((op) => op === 'unpool.overwrite')).toHaveLength(device.gemm ? gemmBackward * 4 / 7 : 0);
    }
  }, 240_000);
});

describe('lm_head on cuBLAS', () => {
  it('takes bf16 operands with bf16 activations and f32 ones otherwise; forward overwrites, backward adds', async () => {
    const { linear, modelOps } = await compiled();
    const rows = 5, channels = 64, vocab = 512;
    const wave = (n: number, f: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(f * i + 0.3));
    const x = wave(rows * channels, 0.37), classifier = wave(vocab * channels, 0.11).map((v) => v / 8), dLogits = wave(rows * vocab, 0.71).map((v) => v * 1e-3);
    const expectedLogits = new Float32Array(rows * vocab), expectedDx = wave(rows * channels, 0.23);
    lmHeadForward(expectedLogits, x, classifier, rows, channels, vocab);
    const dx0 = expectedDx.slice();
    lmHeadBackward(expectedDx, dLogits, classifier, rows, channels, vocab);
    const worst = (got: Float32Array, want: Float32Array) => got.reduce((w, v, i) => Math.max(w, Math.abs(v - want[i]!)), 0) / want.reduce((w, v) => Math.max(w, Math.abs(v)), 0);
    for (const [activation, type, tolerance] of [['bf16', 'bf16', 1e-2], ['f16', 'f32', 1e-6]] as const) {
      const device = new SimulatedModelOpDevice(linear, modelOps);
      const types: string[] = [];
      const gemm = device.gemm!;
      Object.defineProperty(device, 'gemm', { value: (call: GemmCall) => { types.push(`${call.a.type},${call.b.type}→${call.out.type}`); gemm(call); } });
      const ops = deviceOps(device, { kernels: linear.map(image), modelOps: modelOps.map(image) }, cpuBackend().ops, activation);
      const logits = new Float32Array(rows * vocab).fill(7), dx = dx0.slice();
      ops.lmHeadForward(logits, x, classifier, rows, channels, vocab);
      ops.lmHeadBackward(dx, dLogits, classifier, rows, channels, vocab);
      ops.syncToHost!([logits, dx]);
      expect(types, activation).toEqual([`${type},${type}→f32`, `${type},${type}→f32`]);
      expect(device.modelOpLaunches.filter((l) => l.startsWith('lm_head')), activation).toEqual([]);
      expect(worst(logits, expectedLogits), activation).toBeLessThan(tolerance);
      // dx's own values are large beside the update: compare the update itself.
      expect(worst(dx.map((v, i) => v - dx0[i]!), expectedDx.map((v, i) => v - dx0[i]!)), activation).toBeLessThan(tolerance * 10);
      if (activation === 'bf16') expect(worst(logits, expectedLogits)).toBeGreaterThan(1e-5); // bf16 operands, not f32
    }
  });
});
