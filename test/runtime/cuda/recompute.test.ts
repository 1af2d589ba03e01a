// Activation recomputation on the cuda backend, over the simulated device
// (./simulated-model-ops.ts): stories260K set up from a spec whose train block says `recompute`,
// with adapter dropout, trains three steps to the same losses and the same adapter gradients, bit for
// bit, as with `recompute = none`, on the dequantize + cuBLAS path (training sizes') and the fused
// kernels. The device memory shows why: the recomputed blocks share one set of activations (one
// device copy, since a device copy belongs to a host array), so each block recomputed past the
// first holds only its input, and the peak falls by about the same amount for every one of them.
// `recompute = mlp` (gate and up again from each block's kept normed input) is bit for bit too, and
// so is `recompute = projections` (q, k, v and RoPE again as well, from the kept normed attention input).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { deviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { createRng } from '../../../src/reference/random.ts';
import { setUpTraining } from '../../../src/train/trainer.ts';
import { planFrom, stories260kSpec } from '../../support/inline-spec.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const dir = mkdtempSync(join(tmpdir(), 'qalc-recompute-'));
const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });

/** stories260K (5 blocks) with dropout on every adapter and the train block's `recompute`. */
const planOf = (recompute: string) => planFrom(join(dir, `recompute-${recompute}.qal`), `${stories260kSpec(`recompute_${recompute}`, `seq_len = 12  batch = 2  recompute = ${recompute}`)
  .replace('adapter { rank = 4  alpha = 8 }', 'adapter { rank = 4  alpha = 8  dropout = 0.1 }')}
target cuda { arch = [sm_90a]  activation = bf16 }
`);

interface Run {
  readonly losses: number[];
  readonly grads: Float32Array[][];
  /** Device memory allocated after each step. */
  readonly peaks: number[];
}

async function threeSteps(recompute: string, path: 'fused' | 'gemm'): Promise<Run> {
  const plan = planOf(recompute);
  expect(plan.layers.filter((layer) => layer.adapter?.dropout === 0.1)).toHaveLength(5 * 7);
  const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
  const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  const device = new SimulatedModelOpDevice(linear, manifest.modelOps);
  const ops = deviceOps(device, { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpuBackend().ops, 'bf16', { path });
  const { model, dataset } = setUpTraining(plan, dir, ops, () => {});
  // B off zero (on the host: the device reads it at its first use), so every A has a gradient.
  const rng = createRng(5);
  for (const { adapter } of model.adapters()) for (let i = 0; i < adapter.b.length; i++) adapter.b[i] = 0.2 * rng.normal();
  const run: Run = { losses: [], grads: [], peaks: [] };
  for (let step = 0; step < 3; step++) {
    run.losses.push(await model.forward(dataset.batch(step + 1, 2, 12), { training: true, dropoutSeed: 40 + step }));
    await model.backward();
    run.grads.push(model.parameters().map((p) => Float32Array.from(p.grad)));
    run.peaks.push(ops.deviceStats!().peakBytes);
  }
  return run;
}

describe.each(['gemm', 'fused'] as const)('recomputed blocks on the cuda simulated device, %s linear path', (path) => {
  it('train to the loss and the adapter gradients of keeping every block\'s activations, bit for bit, in less device memory', async () => {
    const kept = await threeSteps('none', path);
    expect(kept.grads[0]!.every((g) => g.some((x) => x !== 0))).toBe(true);
    const runs = new Map<number, Run>([[0, kept]]);
    let mlp: Run | undefined;
    let projections: Run | undefined;
    for (const recompute of path === 'gemm' ? ['blocks', '2', '3', 'mlp', 'projections'] : ['blocks', 'mlp', 'projections']) {
      const run = await threeSteps(recompute, path);
      expect(run.losses, `recompute = ${recompute}`).toEqual(kept.losses);
      run.grads.forEach((grads, s) => grads.forEach((g, i) => expect(g, `recompute = ${recompute}, step ${s + 1}, parameter ${i}`).toEqual(kept.grads[s]![i])));
      // The third step allocates nothing (the recomputation included): the first learns the
      // layouts the arrays are read in (activation-boundary.ts), the second takes them.
      expect(run.peaks[2]).toBe(run.peaks[1]);
      if (recompute === 'mlp') mlp = run;
      else if (recompute === 'projections') projections = run;
      else runs.set(recompute === 'blocks' ? 5 : Number(recompute), run);
    }
    const peak = (blocks: number) => runs.get(blocks)!.peaks[2]!;
    console.log(`${path}: device memory after three steps by blocks recomputed: ${[...runs.keys()].sort().map((n) => `${n}: ${peak(n)}`).join(', ')} bytes`);
    expect(peak(5)).toBeLessThan(peak(0));
    // recompute = mlp: each block keeps its normed MLP input (64 values a row, bf16 from the first
    // step on: a fresh block norm's output takes the layout the previous one's readers took) instead
    // of gate and up (172 each, bf16), but for the one pair the blocks share: 4 blocks' (2 · 172 −
    // 64) · 2 bytes over 24 rows — here to within the buffer pool's rounding (see above), so three
    // quarters of it at least; device-memory.ts measures the 7B shape.
    console.log(`${path}: recompute = mlp: ${mlp!.peaks[2]} bytes`);
    expect(peak(0) - mlp!.peaks[2]!).toBeGreaterThanOrEqual(0.75 * 4 * 24 * (2 * 172 - 64) * 2);
    // recompute = projections: also its normed attention input (64 values a row) instead of q (64),
    // k and v (32 each), but for the one set the blocks share: 4 blocks' (64 + 2 · 32 − 64) · 2
    // bytes over 24 rows less, to within the pool's rounding, on top of mlp's.
    console.log(`${path}: recompute = projections: ${projections!.peaks[2]} bytes`);
    expect(mlp!.peaks[2]! - projections!.peaks[2]!).toBeGreaterThanOrEqual(0.75 * 4 * 24 * (64 + 2 * 32 - 64) * 2);
    if (path === 'gemm') {
      // One block recomputed is the one set of arrays all recomputed blocks share: no saving yet.
      // Each further block saves one block's activations but its input — to within the buffer
      // pool's rounding (it hands out a free buffer up to twice the size asked for) and order:
      // RoPE's backward leaves dq and dk in new 16-bit buffers, which trade places in the pool with
      // their float32 ones, and a recomputed forward's RoPE may take one of those first; with the
      // adapters stacked into the base GEMM (gemm-linear.ts) the first recomputed block saves ~20 %
      // less than the others: its forward's temporaries (B in float32 for σB, 4·r·N bytes a layer
      // here, where no optimizer keeps B on the device) take other free buffers.
      const perBlock = (peak(0) - peak(5)) / 4;
      for (const saved of [peak(0) - peak(2), peak(2) - peak(3), (peak(3) - peak(5)) / 2]) expect(Math.abs(saved - perBlock)).toBeLessThan(0.25 * perBlock);
      // At least what a kept block holds in bf16 — the two norms' kept inputs, q, attention's output
      // (64 values a row each), k and v (32), gate and up (172) — less the float32 input a
      // recomputed block holds instead (the kept blocks share one float32 working stream), over 24 rows.
      expect(perBlock).toBeGreaterThanOrEqual(24 * ((4 * 64 + 2 * 32 + 2 * 172) * 2 - 64 * 4));
    }
  }, 300_000);
});
