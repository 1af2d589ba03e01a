// The cuda backend with every op on the device, on the simulated device (./simulated-model-ops.ts)
// standing in for the GPU: two training steps of stories260K (4-bit, group 16 / 43, rank 4,
// batch 2 × 16) give the cpu backend's losses to bf16 rounding, with every op a kernel launch —
// the linear layers on their compiled kernels, the rest on the model-op kernels, AdamW too — and
// the values kept on the device between ops (the host syncs only what the model hands out);
// the same with the linear layers forced onto dequantize + cuBLAS (QALC_CUDA_LINEAR=gemm), and
// forced so on a port without a GEMM (they stay on the fused kernels).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { deviceOps, describeDeviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import type { TrainingOps } from '../../../src/runtime/ops.ts';
import { train } from '../../../src/train/trainer.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const shared = (path: string) => JSON.stringify(resolve('../shared', path));
const dir = mkdtempSync(join(tmpdir(), 'qalc-cuda-device-ops-'));
const specPath = join(dir, 'stories260k-cuda.qal');
writeFileSync(specPath, `spec stories260k_cuda
model {
  checkpoint = ${shared('models/stories260K/stories260K.bin')}
  tokenizer = ${shared('models/stories260K/tok512.bin')}
}
quant { bits = 4  group = 16 }
override proj down { group = 43 }
adapter { kind = qalora  rank = 4  alpha = 8  dropout = 0.1 }
target cuda { arch = [sm_90a]  activation = bf16 }
train {
  data = ${shared('data/tinyshakespeare.txt')}
  seq_len = 16
  batch = 2
  steps = 2
  lr = 3e-3
  eval_every = 100
  checkpoint_every = 100
}
`);

async function losses(ops: TrainingOps, name: string, plan: Parameters<typeof train>[0]['plan'], more: { steps?: number; resume?: boolean } = {}): Promise<number[]> {
  const out = join(dir, name);
  await train({ plan, specDir: dir, out, evalBatches: 1, ops, ...more });
  return readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { loss: number }).loss);
}

/** The spec's plan and its compiled kernels, with the images the simulated device loads. */
async function compiled() {
  const front = frontEnd(specPath);
  if (front.plan === undefined) throw new Error(front.diagnostics.map((d) => d.message).join('\n'));
  const plan = front.plan;
  const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
  const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
  return { plan, manifest, linear, kernels: { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) } };
}

describe('cuda backend, every op on the (simulated) device', () => {
  it('trains stories260K to the cpu backend\'s losses (bf16 rounding), each op a kernel', async () => {
    const { plan, manifest, linear, kernels } = await compiled();
    const device = new SimulatedModelOpDevice(linear, manifest.modelOps);
    const ops = deviceOps(device, kernels, cpuBackend().ops, 'bf16');
    const gpu = await losses(ops, 'cuda', plan);
    const cpu = await losses(cpuBackend().ops, 'cpu', plan);
    console.log(`losses on the simulated device ${gpu.map((l) => l.toFixed(5)).join(', ')}, cpu ${cpu.map((l) => l.toFixed(5)).join(', ')}; ${describeDeviceOps(ops)}`);
    expect(gpu).toHaveLength(2);
    gpu.forEach((loss, i) => expect(Math.abs(loss - cpu[i]!) / cpu[i]!).toBeLessThan(5e-3));
    expect(ops.stats.fallbackForward + ops.stats.fallbackBackward).toBe(0);
    // summary.json records the device's measurements: what it allocated (activations, frozen weights, pools) and its launches.
    const { device: measured } = JSON.parse(readFileSync(join(dir, 'cuda', 'summary.json'), 'utf8')) as { device: { peakBytes: number; launches: number } };
    expect(measured.peakBytes).toBeGreaterThan(1e5);
    expect(measured.launches).toBe(ops.launches());
    // A new process resumes from the checkpoint: adapters and AdamW's moments go back to a fresh device.
    const resumed = await losses(deviceOps(new SimulatedModelOpDevice(linear, manifest.modelOps), kernels, cpuBackend().ops, 'bf16'), 'cuda', plan, { steps: 3, resume: true });
    const cpuResumed = await losses(cpuBackend().ops, 'cpu', plan, { steps: 3, resume: true });
    expect(resumed).toHaveLength(3);
    expect(Math.abs(resumed[2]! - cpuResumed[2]!) / cpuResumed[2]!).toBeLessThan(5e-3);
    const launched = new Set(device.modelOpLaunches);
    for (const op of ['embedding.forward', 'rmsnorm.forward', 'rmsnorm.backward', 'rope.forward', 'rope.backward', 'attention.forward', 'attention.backward_dq',
      'attention.backward_dkdv', 'swiglu.forward', 'swiglu.backward', 'residual.add', 'lm_head.forward', 'lm_head.backward', 'cross_entropy.forward',
      'cross_entropy.backward', 'convert.toActivation', 'convert.accumulateFromActivation', 'sum_squares.partials', 'adamw.step']) expect(launched, op).toContain(op);
  }, 120_000);

  it('trains to the same losses with the linear layers on dequantize + cuBLAS, and on a port without a GEMM', async () => {
    const { plan, manifest, linear, kernels } = await compiled();
    const cpu = await losses(cpuBackend().ops, 'cpu-gemm', plan);
    for (const device of [new SimulatedModelOpDevice(linear, manifest.modelOps), new SimulatedModelOpDevice(linear, manifest.modelOps).withoutGemm()]) {
      const ops = deviceOps(device, kernels, cpuBackend().ops, 'bf16', { path: 'gemm' });
      const gpu = await losses(ops, device.gemm ? 'cuda-gemm' : 'cuda-no-gemm', plan);
      console.log(`losses ${gpu.map((l) => l.toFixed(5)).join(', ')}, cpu ${cpu.map((l) => l.toFixed(5)).join(', ')}; ${describeDeviceOps(ops)}`);
      gpu.forEach((loss, i) => expect(Math.abs(loss - cpu[i]!) / cpu[i]!).toBeLessThan(5e-3));
      const { compiledForward, compiledBackward, gemmForward, gemmBackward, fallbackForward, fallbackBackward } = ops.stats;
      expect(fallbackForward + fallbackBackward).toBe(0);
      expect([gemmForward, gemmBackward]).toEqual(device.gemm ? [compiledForward, compiledBackward] : [0, 0]);
      expect(compiledForward).toBeGreaterThan(0);
      expect(device.launched.includes('gemm')).toBe(device.gemm !== undefined);
    }
  }, 240_000);
});
