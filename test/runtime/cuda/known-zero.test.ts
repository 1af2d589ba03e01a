// Known zeros on the cuda backend (DeviceArrays.zeroLater, device-ops.ts): the model's zeroFill of
// a gradient issues no launch, and the gradient's first writer overwrites it — on the simulated
// device (./simulated-model-ops.ts), a 2-block model of ragged widths (hidden 172 = 4 · 43, the
// down projection in groups of 43, 4 heads over 2 KV heads) with adapter dropout, trained by the
// trainer with the device AdamW on both linear paths (dequantize + cuBLAS, what the 7B shape
// takes, and the fused kernels). Against QALC_CUDA_EAGER_ZERO's path (every zeroFill a memset,
// every gradient op adding into it): the same losses, gradient norms, adapters and last
// gradients, bit for bit, with recomputed blocks too; and fewer memsets and convert launches a
// step, the counts asserted so that a change that brings any back fails here.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CudaManifestKernel, ModelOpManifestKernel } from '../../../src/backends/manifest.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { deviceOps, eagerZerosOf, type DeviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { train } from '../../../src/train/trainer.ts';
import { planFrom } from '../../support/inline-spec.ts';
import { shakespeareSlice, TOK512 } from '../../train/tiny-model.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const dir = mkdtempSync(join(tmpdir(), 'qalc-known-zero-'));
const DATA = shakespeareSlice(dir, 20_000);
const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });

const planOf = (recompute: string): Plan => planFrom(join(dir, `two-blocks-${recompute}.qal`), `spec two_blocks_${recompute}
model {
  dim = 64  hidden_dim = 172  layers = 2  heads = 4  kv_heads = 2  vocab = 512  context = 64
  tokenizer = "${TOK512}"
}
quant { bits = 4  group = 16 }
override proj down { group = 43 }
adapter { rank = 4  alpha = 8  dropout = 0.1 }
target cuda { arch = [sm_90a]  activation = bf16 }
train {
  data = "${DATA}"
  seq_len = 16  batch = 2  steps = 3  lr = 1e-2  max_grad_norm = 1
  eval_every = 1000  checkpoint_every = 1000  recompute = ${recompute}
}
`);

/** The stacked adapter GEMM's copies into [x | v] and σB (gemm-linear.ts): convert launches, but no re-encodings to count here. */
const STACKING_ENTRIES = new Set(['convert.copyActivation', 'convert.scaledToActivation']);

interface Counts {
  readonly fills: number;
  readonly converts: number;
  readonly launches: number;
}

interface Run {
  readonly records: { loss: number; grad_norm: number }[];
  readonly adapters: Float32Array[];
  readonly grads: Float32Array[];
  /** Memsets, convert launches and all launches of each optimizer step after the first (the first learns the layouts readers take). */
  readonly perStep: Counts[];
  readonly launched: Set<string>;
}

async function trained(path: 'gemm' | 'fused', eagerZeros: boolean, recompute = 'none'): Promise<Run> {
  const plan = planOf(recompute);
  const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
  const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  const modelOps: readonly ModelOpManifestKernel[] = manifest.modelOps;
  const device = new SimulatedModelOpDevice(linear, modelOps);
  const ops = deviceOps(device, { kernels: linear.map(image), modelOps: modelOps.map(image) }, cpuBackend().ops, 'bf16', { path, eagerZeros });
  const counted = (): Counts => ({ fills: device.fills, converts: device.modelOpLaunches.filter((l) => l.startsWith('convert.') && !STACKING_ENTRIES.has(l)).length, launches: ops.launches() });
  const atStep: Counts[] = [];
  let parameters: Parameters<NonNullable<DeviceOps['adamw']>>[0] = [];
  const measured: DeviceOps = {
    ...ops,
    adamw(given, options) {
      parameters = given;
      const optimizer = ops.adamw!(given, options);
      const step = optimizer.step.bind(optimizer);
      optimizer.step = () => {
        const report = step();
        atStep.push(counted());
        return report;
      };
      return optimizer;
    },
  };
  const out = join(dir, `${path}-${eagerZeros ? 'eager' : 'known'}-${recompute}`);
  await train({ plan, specDir: dir, out, ops: measured, evalBatches: 1, randomWeights: { seed: 7 } });
  ops.syncToHost(parameters.flatMap((p) => [p.value, p.grad]));
  const records = readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number; grad_norm: number });
  const perStep = atStep.slice(1).map((c, i) => ({ fills: c.fills - atStep[i]!.fills, converts: c.converts - atStep[i]!.converts, launches: c.launches - atStep[i]!.launches }));
  return {
    records: records.map(({ loss, grad_norm }) => ({ loss, grad_norm })), perStep, launched: new Set(device.modelOpLaunches),
    adapters: parameters.map((p) => Float32Array.from(p.value)), grads: parameters.map((p) => Float32Array.from(p.grad)),
  };
}

function expectSameTraining(got: Run, want: Run, what: string): void {
  expect(got.records, what).toEqual(want.records);
  expect(got.records.every((r) => Number.isFinite(r.loss) && r.grad_norm > 0)).toBe(true);
  got.adapters.forEach((a, i) => expect(a, `${what}: adapter ${i}`).toEqual(want.adapters[i]));
  got.grads.forEach((g, i) => expect(g, `${what}: gradient ${i}`).toEqual(want.grads[i]));
  // Every adapter learned: A's gradients are zero at step 1 only (B = 0 there).
  expect(want.grads.every((g) => g.some((x) => x !== 0)), what).toBe(true);
}

describe('known zeros on the cuda backend (simulated device, 2 blocks)', () => {
  it('QALC_CUDA_EAGER_ZERO: 1 fills at once, 0 or unset leaves zeros to their first writer, anything else is refused', () => {
    expect([undefined, '', '0', '1'].map(eagerZerosOf)).toEqual([false, false, false, true]);
    expect(() => eagerZerosOf('yes')).toThrow(/QALC_CUDA_EAGER_ZERO=yes: 1 fills .* 0 \(the default\)/);
  });

  // Memsets and convert launches a step of the 2-block model, eager and with known zeros. Before
  // (2a3a565) a step was 49 memsets and 62 converts on the GEMM path (21 since the adapters' bf16
  // shadow), 49 and 34 fused; RoPE's backwardToActivation (dq, dk in the q and k linears' 16-bit
  // rows) takes 4 converts off both modes. Known zeros take off every adapter gradient's memset
  // (28: dA, dB of 14 projections), every dx's (down, gate, o, q: 8), dGate's and dUp's (4, and
  // their 4 converts: SwiGLU writes them in 16 bits), lm_head's dx and the final norm's (2).
  // Left: attention's dq, dk, dv (3 a block, filled: it adds into them) and the gradient norm's
  // sum. The fused path's dx into zeros is a convert that overwrites instead of one that adds.
  // Attention on bf16 rows (q, k, v as their writers left them, out as the o linear reads it)
  // takes 4 more converts a step off every mode.
  const COUNTS = {
    gemm: { eager: { fills: 49, converts: 13 }, known: { fills: 7, converts: 9 } },
    fused: { eager: { fills: 49, converts: 26 }, known: { fills: 7, converts: 22 } },
  } as const;

  for (const path of ['gemm', 'fused'] as const) {
    it(`${path} linear path: the eager path's training bit for bit, with ${COUNTS[path].eager.fills - COUNTS[path].known.fills} fewer memsets and ${COUNTS[path].eager.converts - COUNTS[path].known.converts} fewer convert launches a step`, async () => {
      const eager = await trained(path, true);
      const known = await trained(path, false);
      expectSameTraining(known, eager, `${path}, known zeros`);
      const countsOf = (run: Run) => {
        // Steps 2 and 3 launch the same.
        expect(run.perStep).toHaveLength(2);
        expect(run.perStep[1]).toEqual(run.perStep[0]);
        const { fills, converts } = run.perStep[0]!;
        return { fills, converts };
      };
      console.log(`${path}: a step's memsets and converts, eager ${JSON.stringify(countsOf(eager))}, known zeros ${JSON.stringify(countsOf(known))}; launches ${eager.perStep[0]!.launches} → ${known.perStep[0]!.launches}`);
      expect(countsOf(eager)).toEqual(COUNTS[path].eager);
      expect(countsOf(known)).toEqual(COUNTS[path].known);
      // The overwriting entries run only into known zeros; RoPE's 16-bit dq and dk in both.
      for (const entry of ['rmsnorm.backwardOverwrite', 'swiglu.backwardToActivation', ...(path === 'gemm' ? ['unpool.overwrite'] : [])]) {
        expect(known.launched, entry).toContain(entry);
        expect(eager.launched, entry).not.toContain(entry);
      }
      for (const run of [known, eager]) expect(run.launched).toContain('rope.backwardToActivation');
      if (path === 'gemm') {
        // The recomputed blocks' forwards change none of it.
        expectSameTraining(await trained(path, false, 'blocks'), eager, `${path}, known zeros, recompute = blocks`);
      }
    }, 300_000);
  }
});

