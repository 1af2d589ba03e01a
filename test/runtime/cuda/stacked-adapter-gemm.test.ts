// stories260K trained on the simulated cuda device (./simulated-model-ops.ts) with the adapters'
// forward product stacked into the base GEMM ([x | v]·[Ŵ ; σB], gemm-linear.ts) and with it as a
// GEMM of its own (QALC_CUDA_ADAPTER_GEMM=separate): rank 4 (K + r = 68, rows padded to 72),
// dropout on every adapter, the down projection's ragged group of 43. Step by step the losses
// agree to bf16's rounding, and so do the adapters' gradients of one step; both follow the cpu
// backend (float32 everywhere) as closely as each other. Recomputed blocks on the stacked path give
// none's results bit for bit in recompute.test.ts, which runs the default (stacked) path. x goes
// into [x | v] once for the layers that read it one after another (q, k, v), and again once it
// is written anew.
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
import { weightOf } from '../../../src/runtime/compiled-linear.ts';
import type { AdapterActivations, QaLoraLinear } from '../../../src/runtime/typescript/qalora-linear.ts';
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

  it('copies x into [x | v] once for the layers that read it in a row, and again after x is written anew', async () => {
    const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
    const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
    const rows = 32, C = 64, rng = createRng(9);
    const inputs = [0, 1, 2].map(() => Float32Array.from({ length: rows * C }, () => rng.normal()));
    const normWeight = Float32Array.from({ length: C }, () => 1 + 0.1 * rng.normal());
    /** RMSNorm of each input into one x (bf16 for the linears from its second write), then the given layers' forwards of x; y and the x copies of each round. */
    const run = async (rounds: readonly (readonly number[])[], inputOf: (round: number) => Float32Array) => {
      const device = new SimulatedModelOpDevice(linear, manifest.modelOps);
      const ops = deviceOps(device, { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpuBackend().ops, 'bf16', { path: 'gemm', adapterGemm: 'stacked' });
      const { model } = setUpTraining(plan, dir, ops, () => {});
      const block = (model as unknown as { blocks: Record<'q' | 'k' | 'v', { layer: QaLoraLinear }>[] }).blocks[0]!;
      const draws = createRng(11); // the same B on every device
      for (const { adapter } of model.adapters()) for (let i = 0; i < adapter.b.length; i++) adapter.b[i] = 0.2 * draws.normal();
      const x = new Float32Array(rows * C), rstd = new Float32Array(rows);
      const results: { ys: Float32Array[]; copies: number }[] = [];
      for (const [round, layers] of rounds.entries()) {
        await ops.rmsnormForward(x, rstd, inputOf(round), normWeight, rows, C, 1e-5);
        const before = device.modelOpLaunches.filter((l) => l === 'convert.copyActivation').length;
        const ys: Float32Array[] = [];
        for (const which of layers) {
          const layer = [block.q, block.k, block.v][which]!.layer;
          const y = new Float32Array(rows * weightOf(layer).outFeatures);
          const saved: AdapterActivations = { u: new Float32Array(rows * (C / layer.adapter!.groupSize)), v: new Float32Array(rows * layer.adapter!.rank), mask: undefined };
          await ops.qaloraLinearForward(y, x, rows, layer, saved);
          ys.push(y);
        }
        await ops.syncToHost(ys);
        results.push({ ys, copies: device.modelOpLaunches.filter((l) => l === 'convert.copyActivation').length - before });
      }
      return results;
    };
    // Round 0 makes x's readers known (bf16), rounds 1 and 2 find x resident in bf16.
    const got = await run([[0], [0, 1, 2], [1]], (round) => inputs[round]!);
    expect(got[1]!.copies).toBe(4); // x once for q, k and v, and each one's v
    expect(got[2]!.copies).toBe(2); // x written anew by RMSNorm: copied again
    // Each y is what the layer's forward gives on a device that copied x for it alone.
    for (const [round, which] of [[1, 0], [1, 1], [1, 2], [2, 0]] as const) {
      const index = round === 2 ? 0 : which;
      const layer = round === 2 ? 1 : which;
      const alone = await run([[layer], [layer]], (r) => inputs[r === 0 ? 0 : round]!);
      expect(got[round]!.ys[index], `round ${round}, layer ${layer}`).toEqual(alone[1]!.ys[0]);
    }
  }, 300_000);
});
