// stories260K trained on the simulated cuda device (./simulated-model-ops.ts) with the adapters'
// forward product stacked into the base GEMM ([x | v]·[Ŵ ; σB], gemm-linear.ts) and with it as a
// GEMM of its own (QALC_CUDA_ADAPTER_GEMM=separate): rank 4 (K + r = 68, rows padded to 72),
// dropout on every adapter, the down projection's ragged group of 43. Step by step the losses
// agree to bf16's rounding, and so do the adapters' gradients of one step; both follow the cpu
// backend (float32 everywhere) as closely as each other. Recomputed blocks on the stacked path give
// none's results bit for bit in recompute.test.ts, which runs the default (stacked) path.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { deviceOps, type DeviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import type { AdapterGemm } from '../../../src/runtime/cuda/gemm-linear.ts';
import type { TrainingOps } from '../../../src/runtime/ops.ts';
import { createRng } from '../../../src/reference/random.ts';
import { setUpTraining, train } from '../../../src/train/trainer.ts';
import { planFrom, stories260kSpec } from '../../support/inline-spec.ts';
import { relativeL2Error } from '../../support/relative-error.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const dir = mkdtempSync(join(tmpdir(), 'qalc-stacked-'));
const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
const plan = planFrom(join(dir, 'stacked.qal'), `${stories260kSpec('stacked', 'seq_len = 16  batch = 2  steps = 4  lr = 3e-3  eval_every = 100  checkpoint_every = 100')
  .replace('adapter { rank = 4  alpha = 8 }', 'adapter { rank = 4  alpha = 8  dropout = 0.1 }')}
target cuda { arch = [sm_90a]  activation = bf16 }
`);

async function cudaOps(adapterGemm: AdapterGemm): Promise<DeviceOps> {
  const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
  const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  const device = new SimulatedModelOpDevice(linear, manifest.modelOps);
  return deviceOps(device, { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpuBackend().ops, 'bf16', { path: 'gemm', adapterGemm });
}

/** The losses of the trainer's run: the held-out loss, each step's, the held-out loss. */
async function losses(ops: TrainingOps, name: string): Promise<number[]> {
  const out = join(dir, name);
  await train({ plan, specDir: dir, out, evalBatches: 1, ops });
  return readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { loss: number }).loss);
}

/** Every parameter's gradient after one forward and backward, with B off zero (so every A has one). */
async function gradients(ops: TrainingOps): Promise<Float32Array[]> {
  const { model, dataset } = setUpTraining(plan, dir, ops, () => {});
  const rng = createRng(5);
  for (const { adapter } of model.adapters()) for (let i = 0; i < adapter.b.length; i++) adapter.b[i] = 0.2 * rng.normal();
  await model.forward(dataset.batch(1, 2, 16), { training: true, dropoutSeed: 40 });
  await model.backward();
  return model.parameters().map((p) => Float32Array.from(p.grad));
}

describe('the adapters stacked into the base GEMM on the cuda simulated device', () => {
  it('stories260K trains step by step to the separate GEMM\'s losses and gradients within bf16 rounding, as near the float32 cpu backend', async () => {
    const [stacked, separate] = [await cudaOps('stacked'), await cudaOps('separate')];
    const [got, old, cpu] = [await losses(stacked, 'stacked'), await losses(separate, 'separate'), await losses(cpuBackend().ops, 'cpu')];
    expect(stacked.stats.stackedForward).toBeGreaterThan(0);
    expect(separate.stats.stackedForward).toBe(0);
    expect(got).toHaveLength(4);
    console.log(`losses: stacked ${got.join(', ')}; separate ${old.join(', ')}; cpu ${cpu.join(', ')}`);
    got.forEach((loss, i) => {
      expect(Math.abs(loss - old[i]!), `loss ${i}`).toBeLessThanOrEqual(5e-3 * Math.abs(old[i]!));
      expect(Math.abs(loss - cpu[i]!), `loss ${i} against cpu`).toBeLessThanOrEqual(1e-2 * Math.abs(cpu[i]!));
    });
    const [gotGrads, oldGrads, cpuGrads] = [await gradients(await cudaOps('stacked')), await gradients(await cudaOps('separate')), await gradients(cpuBackend().ops)];
    // Per parameter ‖stacked − cpu‖, ‖separate − cpu‖ and ‖stacked − separate‖ over its norm: the
    // two cuda paths differ by bf16's rounding of y, which an A's small gradient (dropout, mean
    // pooling) feels at up to ~10 %, as far as either is from float32.
    const errors = gotGrads.map((g, i) => ({ stacked: relativeL2Error(g, cpuGrads[i]!), separate: relativeL2Error(oldGrads[i]!, cpuGrads[i]!), between: relativeL2Error(g, oldGrads[i]!) }));
    const worst = (key: keyof (typeof errors)[number]) => Math.max(...errors.map((e) => e[key]));
    const median = (key: keyof (typeof errors)[number]) => errors.map((e) => e[key]).sort((a, b) => a - b)[errors.length >> 1]!;
    console.log(`gradients, relative L2 (worst, median): stacked vs cpu ${worst('stacked')}, ${median('stacked')}; separate vs cpu ${worst('separate')}, ${median('separate')}; stacked vs separate ${worst('between')}, ${median('between')}`);
    // One parameter's distance is one draw of the rounding noise (either path's can be the larger),
    // so each is held to the noise level both show and their worst and median to each other's.
    errors.forEach((e, i) => expect(e.stacked, `parameter ${i} against cpu`).toBeLessThanOrEqual(0.1));
    expect(worst('stacked')).toBeLessThanOrEqual(1.1 * worst('separate'));
    expect(median('stacked')).toBeLessThanOrEqual(1.1 * median('separate'));
  }, 300_000);
});
