// The model ops at a linear layer bind its 16-bit activations directly (activation-boundary.ts):
// on the simulated device (./simulated-model-ops.ts), stories260K trains three steps (on the fused
// linear kernels and on dequantize + cuBLAS, the path of training sizes) with the
// model-op kernels as compiled and with their activation entry points taken out of the manifest
// (what every step launched before they existed: float32 model ops and a convert kernel at each
// linear). The losses must be identical — the early rounding is the conversion's own rounding
// (nearest even of the same float32 value), and a widened 16-bit value is the value the
// conversion to float32 wrote — and from the second forward on (the first, the trainer's held-out
// loss before step 1, learns which layout each array's readers take) a block's forward launches no
// conversion with bf16 activations (attention reads q, k, v and writes out in bf16, RoPE turns q
// and k where the linears wrote them) and none but attention's with fp16 ones (v in, out out: its
// kernel reads and writes float32 there), with bf16 activations
// (lm_head's GEMM in bf16 takes the final norm as RMSNorm wrote it) and with fp16 ones (where
// lm_head's GEMM is float32 and the final norm stays float32). A step in steady state allocates
// no device memory.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CudaManifestKernel, ModelOpManifestKernel } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { deviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { train } from '../../../src/train/trainer.ts';
import { stories260kSpec } from '../../support/inline-spec.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

/** The entry points this change added: without them the runtime launches what it did before. */
const BOUNDARY_ENTRIES = ['forwardToActivation', 'forwardInActivation', 'backwardFromActivation', 'addFromActivation', 'forwardFromActivation', 'backwardToActivation'];
/** RMSNorm's backward of its 16-bit kept input (rmsnormForwardKeepingInput) is no boundary: both runs keep the norms' inputs so, or their losses would differ. */
const isBoundaryEntry = (op: string, entry: string) => BOUNDARY_ENTRIES.includes(entry) && !(op === 'rmsnorm' && entry === 'backwardFromActivation');

const dir = mkdtempSync(join(tmpdir(), 'qalc-activation-boundary-'));
const specFor = (activation: string) => `${stories260kSpec(`boundary_${activation}`, 'seq_len = 16  batch = 2  steps = 3  lr = 3e-3  eval_every = 100  checkpoint_every = 100')}
target cuda { arch = [sm_90a]  activation = ${activation} }
`;

/** A launch's name, and whether it converts activations (rows of tokens, not an adapter's B, which the optimizer keeps in float32 and the GEMM path takes in 16 bits). */
interface Launch {
  readonly name: string;
  readonly convertsActivations: boolean;
}

/** Each forward's launches, from the embedding to the loss's first launch (cross_entropy's, fused with lm_head or not), and what follows it (a training step's backward and update, or nothing much after a held-out loss). */
function steps(launches: readonly Launch[]): { forward: Launch[]; backward: Launch[] }[] {
  const starts = launches.flatMap((l, i) => (l.name.startsWith('embedding.') ? [i] : []));
  return starts.map((start, s) => {
    const end = starts[s + 1] ?? launches.length;
    const lossAt = launches.findIndex((l, i) => i > start && l.name.startsWith('cross_entropy.'));
    return { forward: launches.slice(start, lossAt), backward: launches.slice(lossAt, end) };
  });
}
const conversions = (launches: readonly Launch[]) => launches.filter((l) => l.convertsActivations).length;

const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });

describe('RMSNorm before lm_head\'s bf16 GEMM', () => {
  it('writes bf16 once the GEMM has read it so, which the GEMM then takes as it is; a reader in float32 after that is counted', async () => {
    const specPath = join(dir, 'lm-head.qal');
    writeFileSync(specPath, specFor('bf16'));
    const { manifest } = await loadCompiledKernels(frontEnd(specPath).plan!, { targets: ['cuda'] });
    const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
    const device = new SimulatedModelOpDevice(linear, manifest.modelOps);
    const ops = deviceOps(device, { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpuBackend().ops, 'bf16');
    const rows = 3, channels = 64, vocab = 512;
    const wave = (n: number, f: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(f * i + 0.3));
    const x = wave(rows * channels, 0.37), weight = wave(channels, 0.5), classifier = wave(vocab * channels, 0.11);
    const normed = new Float32Array(rows * channels), rstd = new Float32Array(rows), logits = new Float32Array(rows * vocab);
    const launchesOf = async (step: () => unknown) => {
      const from = device.modelOpLaunches.length;
      await step();
      return device.modelOpLaunches.slice(from);
    };
    const normThenHead = () => launchesOf(() => {
      ops.rmsnormForward(normed, rstd, x, weight, rows, channels, 1e-5);
      ops.lmHeadForward(logits, normed, classifier, rows, channels, vocab);
    });
    expect(await normThenHead()).toEqual(['rmsnorm.forward', 'convert.toActivation']);
    ops.syncToHost!([logits]);
    const first = logits.slice();
    // (3 rows: a block a row, the few-rows entry of the same rounding.)
    expect(await normThenHead()).toEqual(['rmsnorm.forwardToActivationFewRows']);
    ops.syncToHost!([logits]);
    expect(logits).toEqual(first);
    expect(ops.earlyRoundings()).toBe(0);
    // RMSNorm's backward reads its dy in float32: those values were rounded for a bf16 reader.
    await launchesOf(() => ops.rmsnormBackward(new Float32Array(rows * channels), normed, x, weight, rstd, rows, channels));
    expect(ops.earlyRoundings()).toBe(1);
  });
});

describe.each([['bf16', 'fused', 'bf16'], ['bf16', 'gemm', 'bf16'], ['f16', 'fused', 'fp16']] as const)('model ops at the linear layers, %s activations, %s linear path', (activation, path, spelled) => {
  it('trains to identical losses with no conversion in a block\'s forward (but attention\'s, fp16) after the first forward', async () => {
    const specPath = join(dir, `boundary-${activation}.qal`);
    writeFileSync(specPath, specFor(spelled));
    const plan = frontEnd(specPath).plan!;
    const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
    const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
    const before = manifest.modelOps.map((k) => ({ ...k, entryPoints: k.entryPoints.filter((e) => !isBoundaryEntry(k.op, e.name)) }));
    const run = async (modelOps: readonly ModelOpManifestKernel[], name: string) => {
      const device = new SimulatedModelOpDevice(linear, modelOps);
      const ops = deviceOps(device, { kernels: linear.map(image), modelOps: modelOps.map(image) }, cpuBackend().ops, activation, { path });
      // The device memory allocated so far at each forward's start.
      const peaks: number[] = [];
      const sampled = { ...ops, embeddingForward: (...args: Parameters<typeof ops.embeddingForward>) => (peaks.push(ops.deviceStats!().peakBytes), ops.embeddingForward(...args)) };
      const out = join(dir, name);
      await train({ plan, specDir: dir, out, evalBatches: 1, ops: sampled });
      const losses = readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { loss: number }).loss);
      const tokens = 2 * 16; // the spec's batch × seq_len
      // The stacked adapter GEMM's copies of x and v into [x | v] (gemm-linear.ts) move 16-bit rows as they are: no conversion.
      const launches = device.modelOpLaunches.map((name, i): Launch => ({ name, convertsActivations: name.startsWith('convert.') && name !== 'convert.copyActivation' && device.modelOpRows[i] === tokens }));
      return { losses, launches, earlyRoundings: ops.earlyRoundings(), peakBytes: ops.deviceStats!().peakBytes, peaks };
    };
    const now = await run(manifest.modelOps, `now-${activation}-${path}`);
    const old = await run(before, `before-${activation}-${path}`);
    expect(now.losses).toHaveLength(3);
    expect(now.losses).toEqual(old.losses);
    expect(now.earlyRoundings).toBe(0);
    // The third training step allocates no device memory: its buffers are the steps' before (RoPE's
    // float32 q and k among them, which used to be allocated anew at every call).
    for (const { peaks } of [now, old]) expect(peaks[4]).toBe(peaks[3]);

    // The held-out loss, three training steps, the held-out loss.
    const [nowSteps, oldSteps] = [steps(now.launches), steps(old.launches)];
    expect(nowSteps).toHaveLength(5);
    const layers = plan.model.architecture.layers;
    const count = (s: { forward: Launch[]; backward: Launch[] }) => `${conversions(s.forward)} forward, ${conversions(s.backward)} backward`;
    console.log(`${activation}, ${path}: conversions in training step 2 (${layers} blocks): ${count(nowSteps[2]!)} (before: ${count(oldSteps[2]!)}); in the first forward: ${count(nowSteps[0]!)}; device memory ${now.peakBytes} bytes at the most (before: ${old.peakBytes})`);
    // What is left with fp16 activations is attention's: it reads v in float32 and writes out in float32 (its backward reads out so), the o linear reads out in 16 bits.
    const besideAttention = (launches: readonly Launch[]) => launches.filter((l, i) => l.convertsActivations && (launches[i + 1]?.name === 'attention.forward' || launches[i - 1]?.name === 'attention.forward')).length;
    const attentionConversions = activation === 'bf16' ? 0 : 2 * layers;
    for (const later of nowSteps.slice(1, 4)) {
      expect(conversions(later.forward)).toBe(attentionConversions);
      // On the GEMM path each of a block's 7 adapted linears copies its v into [x | v], and x once
      // for the layers that read the same x in a row (q with k and v, gate with up; then o, down): 7 + 4.
      expect(later.forward.filter((l) => l.name === 'convert.copyActivation')).toHaveLength(path === 'gemm' ? (7 + 4) * layers : 0);
      expect(besideAttention(later.forward)).toBe(attentionConversions);
    }
    // Before: each block's forward converted RMSNorm's output for q/k/v and gate/up (5), q, k, o's and down's outputs (4), SwiGLU's inputs and output (3).
    expect(conversions(oldSteps[2]!.forward)).toBeGreaterThanOrEqual(14 * layers);
    // SwiGLU's backward reads gate and up as the linears wrote them and writes dGate and dUp as
    // their backward reads them (into known zeros), RoPE's writes dq and dk so: six fewer a block;
    // with bf16 activations two more, attention's backward reading q and k as RoPE left them (in
    // bf16, where before RoPE's float32 rows were converted for it).
    expect(conversions(nowSteps[2]!.backward)).toBe(conversions(oldSteps[2]!.backward) - (activation === 'bf16' ? 8 : 6) * layers);
    // The first forward learns the readers' layouts: the first block's RMSNorm still writes float32
    // there; SwiGLU writes the gate's 16-bit rows from the first (its reader, down, takes them so)
    // and reads gate and up as the linears left them, never through float32 temporaries.
    expect(conversions(nowSteps[0]!.forward)).toBeGreaterThan(attentionConversions);
    expect(nowSteps[0]!.forward.filter((l) => l.name === 'swiglu.forwardInActivation')).toHaveLength(layers);
    expect(nowSteps[0]!.forward.filter((l) => l.name === 'swiglu.forward')).toHaveLength(0);
    // (The blocks' norms also keep their input in 16 bits for the backward: forwardToActivationKeepingInput.)
    expect(nowSteps[2]!.forward.filter((l) => l.name === 'rmsnorm.forwardToActivationKeepingInput')).toHaveLength(2 * layers);
    // (The final norm: 32 rows, so a block a row.)
    expect(nowSteps[2]!.forward.filter((l) => l.name === 'rmsnorm.forwardToActivationFewRows')).toHaveLength(activation === 'bf16' ? 1 : 0);
    // lm_head's GEMM reads the final norm in bf16 with bf16 activations, in float32 with fp16 ones.
    expect(nowSteps[2]!.forward.filter((l) => l.name === 'rmsnorm.forward')).toHaveLength(activation === 'bf16' ? 0 : 1);
  }, 240_000);
});
