// The adapters in the device optimizer's packed storage (src/runtime/cuda/packed-parameters.ts),
// on the simulated device: stories260K (rank 4, so each A ends on a 16-byte boundary and B follows
// it) trains with no device→device copy at all — the linear kernels bind each layer's A|B where
// AdamW updates it and adapter_grad (or the GEMM path's dB GEMM) writes dA|dB in place — and with
// one gradient norm and one adamw launch a step; accumulated micro-batches (the trainer syncs
// their gradients to the host) still add into the gradients; a resumed run's adapters and moments
// land in the storage. Without the optimizer (a forward alone) A|B are packed by copies, two a
// layer: what the copy count would show if the storage were not bound.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CudaManifestKernel, ModelOpManifestKernel } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import type { DeviceBuffer } from '../../../src/runtime/cuda/cuda.ts';
import type { DeviceAdamW } from '../../../src/runtime/cuda/device-adamw.ts';
import { deviceOps, type DeviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import type { LinearPath } from '../../../src/runtime/cuda/gemm-linear.ts';
import type { OptimizerParameter, OptimizerState } from '../../../src/runtime/optimizer.ts';
import { evaluateRun } from '../../../src/train/evaluate-run.ts';
import { train } from '../../../src/train/trainer.ts';
import { elementsOf } from './simulated-device.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';
import { stories260kCudaSpec } from './stories260k-cuda-spec.ts';

const dir = mkdtempSync(join(tmpdir(), 'qalc-cuda-packed-'));

function writeSpec(accumulation: number): string {
  const path = join(dir, `stories260k-accum${accumulation}.qal`);
  writeFileSync(path, stories260kCudaSpec(accumulation > 1 ? `  grad_accum = ${accumulation}\n` : ''));
  return path;
}

async function compiled(specPath: string): Promise<{ plan: Plan; linear: CudaManifestKernel[]; modelOps: readonly ModelOpManifestKernel[] }> {
  const front = frontEnd(specPath);
  if (front.plan === undefined) throw new Error(front.diagnostics.map((d) => d.message).join('\n'));
  const { manifest } = await loadCompiledKernels(front.plan, { targets: ['cuda'] });
  return { plan: front.plan, linear: manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda'), modelOps: manifest.modelOps };
}
const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });

/** Float32 values of a device buffer of the simulated device. */
const onDevice = (device: SimulatedModelOpDevice, buffer: DeviceBuffer) => elementsOf(Float32Array, device.bytesAt(buffer.pointer)!).slice(0, buffer.bytes / 4);

type Watch = (optimizer: DeviceAdamW, parameters: readonly OptimizerParameter[]) => void;

/** The ops over a simulated device, and the device optimizer they make (once train() asked for it), handed to `watch` as it is made. */
function opsOn(device: SimulatedModelOpDevice, kernels: { linear: CudaManifestKernel[]; modelOps: readonly ModelOpManifestKernel[] }, path: LinearPath, watch?: Watch) {
  const ops = deviceOps(device, { kernels: kernels.linear.map(image), modelOps: kernels.modelOps.map(image) }, cpuBackend().ops, 'bf16', { path });
  const made: DeviceAdamW[] = [];
  const watched: DeviceOps = {
    ...ops,
    adamw: (parameters, options) => {
      const optimizer = ops.adamw!(parameters, options) as DeviceAdamW;
      made.push(optimizer);
      watch?.(optimizer, parameters);
      return optimizer;
    },
  };
  return { ops: watched, made };
}

describe('the adapters in the device optimizer\'s packed storage (simulated device)', () => {
  it.each(['fused', 'gemm'] as const)('trains with no device→device copy and one norm and adamw launch a step (%s linear path); a resumed run\'s adapters and moments land in the storage', async (path) => {
    const specPath = writeSpec(1);
    const kernels = await compiled(specPath);
    const device = new SimulatedModelOpDevice(kernels.linear, kernels.modelOps);
    const first = opsOn(device, kernels, path);
    const out = join(dir, `run-${path}`);
    await train({ plan: kernels.plan, specDir: dir, out, evalBatches: 1, ops: first.ops });
    expect(device.copies).toBe(0);
    const launched = (op: string) => device.modelOpLaunches.filter((l) => l === op).length;
    expect([launched('sum_squares.partials'), launched('sum_squares.finish'), launched('adamw.step')]).toEqual([2, 2, 2]);
    // dA|dB written in place: no accumulate of an adapter's gradients (the only float32 scratches here).
    expect(launched('residual.accumulate')).toBe(0);
    if (path === 'gemm') expect(device.launched).toContain('gemm');

    // A new process resumes: the checkpoint's moments go into the storage at once, its adapters at the first read.
    const resumedDevice = new SimulatedModelOpDevice(kernels.linear, kernels.modelOps);
    let restored: OptimizerState | undefined;
    let checkedAdapters = 0;
    const resumed = opsOn(resumedDevice, kernels, path, (optimizer, parameters) => {
      const restore = optimizer.restore.bind(optimizer), step = optimizer.step.bind(optimizer);
      optimizer.restore = (state) => {
        restore(state);
        restored = state;
        const { storage } = optimizer;
        parameters.forEach((p, i) => {
          expect(onDevice(resumedDevice, storage.partOf(storage.m, i)), p.name).toEqual(Float32Array.from(state.m[i]!));
          expect(onDevice(resumedDevice, storage.partOf(storage.v, i)), p.name).toEqual(Float32Array.from(state.v[i]!));
        });
      };
      optimizer.step = () => {
        // Before the resumed run's first update the host's adapters (the checkpoint's) are where the kernels read them.
        if (optimizer.stepsDone === 2) {
          parameters.forEach((p, i) => expect(onDevice(resumedDevice, optimizer.storage.partOf(optimizer.storage.values, i)), p.name).toEqual(p.value));
          checkedAdapters = parameters.length;
        }
        return step();
      };
    });
    await train({ plan: kernels.plan, specDir: dir, out, evalBatches: 1, ops: resumed.ops, steps: 3, resume: true });
    expect(restored).toBeDefined();
    expect(checkedAdapters).toBeGreaterThan(0);
    expect(resumedDevice.copies).toBe(0);

    // The checkpoint synced every adapter back to the host from its part of the storage.
    const { storage, parameters } = resumed.made[0]!;
    parameters.forEach((p, i) => expect(onDevice(resumedDevice, storage.partOf(storage.values, i)), p.name).toEqual(p.value));
  }, 240_000);

  it('adds accumulated micro-batches into the gradients (the trainer averages them on the host), still without copies', async () => {
    const specPath = writeSpec(2);
    const kernels = await compiled(specPath);
    const device = new SimulatedModelOpDevice(kernels.linear, kernels.modelOps);
    const { ops } = opsOn(device, kernels, 'fused');
    const out = join(dir, 'run-accumulated');
    await train({ plan: kernels.plan, specDir: dir, out, evalBatches: 1, ops });
    const cpuOut = join(dir, 'run-accumulated-cpu');
    await train({ plan: kernels.plan, specDir: dir, out: cpuOut, evalBatches: 1, ops: cpuBackend().ops });
    const losses = (folder: string) => readFileSync(join(folder, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    const [gpu, cpu] = [losses(out), losses(cpuOut)];
    gpu.forEach((loss, i) => expect(Math.abs(loss - cpu[i]!) / cpu[i]!).toBeLessThan(5e-3));
    expect(device.copies).toBe(0);
    // The second micro-batch of each step adds dA and dB into the gradients the first left (synced back, so not zeros).
    // dA and dB of each backward of a second micro-batch (half the backwards): the first micro-batch's wrote in place.
    const accumulated = device.modelOpLaunches.filter((l) => l === 'residual.accumulate').length;
    expect(accumulated).toBe(2 * (ops.stats.compiledBackward / 2));
  }, 240_000);

  it('packs A|B by copies, two a layer, when no device optimizer holds them (qalc eval: forwards alone)', async () => {
    const kernels = await compiled(writeSpec(1));
    const device = new SimulatedModelOpDevice(kernels.linear, kernels.modelOps);
    const { ops } = opsOn(device, kernels, 'fused');
    await evaluateRun({ plan: kernels.plan, specDir: dir, batches: 1, ops });
    expect(ops.stats.compiledForward).toBeGreaterThan(0);
    expect(device.copies).toBe(2 * ops.stats.compiledForward);
  }, 240_000);
});
