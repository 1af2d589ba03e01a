// The training step's backward as a CUDA graph (src/runtime/cuda/step-graph.ts), on the simulated
// device (./simulated-model-ops.ts: a graph is a recording, and what a capture cannot hold is
// refused): a 2-block model of ragged widths trained by the trainer with the device AdamW, once
// with the backward captured and replayed and once launched op by op (QALC_CUDA_GRAPH=0's
// path). The same losses, gradient norms, adapters, gradients and checkpoint (AdamW's moments
// and step) bit for bit — with evaluations between steps (each drops the graph: captured again),
// across a checkpoint and --resume, and on Alpaca data whose loss mask counts other rows every
// step, and with adapter dropout (its seed a device word each forward rewrites).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { deviceOps, type DeviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { stepGraphPort } from '../../../src/runtime/cuda/step-graph.ts';
import { train, type TrainSummary } from '../../../src/train/trainer.ts';
import { planFrom } from '../../support/inline-spec.ts';
import { shakespeareSlice, TOK512 } from '../../train/tiny-model.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const dir = mkdtempSync(join(tmpdir(), 'qalc-step-graph-'));
const SHAKESPEARE = shakespeareSlice(dir, 20_000);
const ALPACA = join(dir, 'alpaca.json');
writeFileSync(ALPACA, JSON.stringify(['Say hi.', 'Add two and three.', 'Name a colour.', 'Count to four.', 'Spell cat.', 'Greet a friend.', 'Name a fruit.', 'Say no.']
  .map((instruction, i) => ({ instruction, input: '', output: ['Hi there.', 'Five, since two and three make five.', 'Red.', 'One, two, three, four.', 'C, a, t.', 'Hello, friend!', 'An apple.', 'No.'][i]! }))));
const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });

interface Spec {
  readonly dropout?: number;
  readonly evalEvery?: number;
  readonly alpaca?: boolean;
  readonly recompute?: string;
}

const planOf = ({ dropout = 0, evalEvery = 1000, alpaca = false, recompute = 'none' }: Spec): Plan => planFrom(join(dir, `two-blocks-${dropout}-${evalEvery}-${alpaca}-${recompute}.qal`), `spec two_blocks
model {
  dim = 64  hidden_dim = 172  layers = 2  heads = 4  kv_heads = 2  vocab = 512  context = 96
  tokenizer = "${TOK512}"
}
quant { bits = 4  group = 16 }
override proj down { group = 43 }
adapter { rank = 4  alpha = 8  dropout = ${dropout} }
target cuda { arch = [sm_90a]  activation = bf16 }
train {
  data = "${alpaca ? ALPACA : SHAKESPEARE}"${alpaca ? '  format = alpaca  eval_fraction = 0.25' : ''}
  seq_len = ${alpaca ? 80 : 16}  batch = 2  steps = 8  lr = 1e-2  max_grad_norm = 1
  eval_every = ${evalEvery}  checkpoint_every = 1000  recompute = ${recompute}
}
`);

interface Run {
  readonly records: { loss: number; grad_norm: number; eval_loss?: number }[];
  /** train.jsonl's `backward` of each step. */
  readonly backwards: (string | undefined)[];
  readonly checkpoint: Uint8Array;
  readonly grads: Float32Array[];
  readonly summary: TrainSummary;
  readonly device: SimulatedModelOpDevice;
}

async function trained(spec: Spec, graph: boolean, name: string, more: { steps?: number; resume?: boolean } = {}): Promise<Run> {
  const plan = planOf(spec);
  const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
  const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  const device = new SimulatedModelOpDevice(linear, manifest.modelOps);
  const step = stepGraphPort(device, graph ? undefined : 'QALC_CUDA_GRAPH=0');
  const ops: DeviceOps = { ...deviceOps(step.port, { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpuBackend().ops, 'bf16', { path: 'gemm' }), stepGraph: step.graph };
  let parameters: Parameters<NonNullable<DeviceOps['adamw']>>[0] = [];
  const kept: DeviceOps = { ...ops, adamw: (given, options) => ((parameters = given), ops.adamw!(given, options)) };
  const out = join(dir, name);
  const summary = await train({ plan, specDir: dir, out, ops: kept, evalBatches: 1, randomWeights: { seed: 7 }, ...more });
  ops.syncToHost(parameters.map((p) => p.grad));
  const lines = readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Run['records'][number] & { backward?: string });
  const records = lines.map(({ loss, grad_norm, eval_loss }) => ({ loss, grad_norm, ...(eval_loss !== undefined ? { eval_loss } : {}) }));
  return { records, backwards: lines.map((l) => l.backward), checkpoint: readFileSync(join(out, 'checkpoint.safetensors')), grads: parameters.map((p) => Float32Array.from(p.grad)), summary, device };
}

function expectSameTraining(got: Run, want: Run, what: string): void {
  expect(got.records, what).toEqual(want.records);
  expect(got.records.every((r) => Number.isFinite(r.loss) && r.grad_norm > 0), what).toBe(true);
  got.grads.forEach((g, i) => expect(g, `${what}: gradient ${i}`).toEqual(want.grads[i]));
  // Adapters and AdamW's moments, as the checkpoint holds them (its metadata says whether the run resumed).
  expect(Buffer.from(tensorBytes(got.checkpoint)).equals(Buffer.from(tensorBytes(want.checkpoint))), `${what}: checkpoint.safetensors' tensors`).toBe(true);
  expect(tensorBytes(want.checkpoint).length).toBeGreaterThan(1000);
}

/** A safetensors file's tensor data: what follows its 8-byte header length and JSON header. */
function tensorBytes(file: Uint8Array): Uint8Array {
  const headerBytes = Number(Buffer.from(file).readBigUInt64LE(0));
  return file.subarray(8 + headerBytes);
}

describe('the training step\'s backward as a CUDA graph (simulated device, 2 blocks)', () => {
  it('is captured at step 4 and replayed after: the launched run\'s training bit for bit, and the line says so', async () => {
    const launched = await trained({}, false, 'plain-launched');
    const graphed = await trained({}, true, 'plain-graph');
    expectSameTraining(graphed, launched, 'graph');
    // Step 1 allocates, steps 2 and 3 make the same calls, step 4 is captured, 5–8 replay it.
    expect(graphed.summary.stepGraph).toMatch(/^train step: the backward as a CUDA graph of \d+ device calls, captured at step 4 and replayed 4 times; /);
    expect(graphed.device.captures).toBe(1);
    expect(graphed.device.graphLaunches).toBe(5);
    expect(graphed.backwards).toEqual(['traced', 'traced', 'traced', 'captured', 'replayed', 'replayed', 'replayed', 'replayed']);
    expect(launched.backwards).toEqual(Array(8).fill('launched'));
    expect(launched.device.captures).toBe(0);
    expect(launched.summary.stepGraph).toBe('train step: every op launched from the host (no CUDA graph: QALC_CUDA_GRAPH=0)');
    const nodes = Number(/graph of (\d+) device calls/.exec(graphed.summary.stepGraph!)![1]);
    // Most of a step's calls: the backward's ~3 linears' worth a projection.
    expect(nodes).toBeGreaterThan(100);
  }, 300_000);

  it('evaluations between steps drop the graph and it is captured again, bit for bit', async () => {
    const launched = await trained({ evalEvery: 4 }, false, 'eval-launched');
    const graphed = await trained({ evalEvery: 4 }, true, 'eval-graph');
    expectSameTraining(graphed, launched, 'graph with evaluations');
    expect(graphed.records.filter((r) => r.eval_loss !== undefined)).toHaveLength(2);
    // Captured at step 4, evaluated after it; settled again over 5 and 6, captured at 7, replayed at 8.
    expect(graphed.summary.stepGraph).toMatch(/captured at step 7 \(captured 2 times, again after each evaluation or checkpoint; the last dropped by the evaluation at step 8\) and replayed 1 times/);
    expect(graphed.device.captures).toBe(2);
  }, 300_000);

  it('a run resumed from a checkpoint trains as the run that never stopped', async () => {
    const whole = await trained({}, false, 'resume-whole', { steps: 10 });
    // Captured at step 4, replayed at 5, checkpointed (the last step); resumed: step 6 allocates
    // in the new process, 7 and 8 settle, 9 is captured, 10 replays it.
    const first = await trained({}, true, 'resume-graph', { steps: 5 });
    expect(first.summary.stepGraph).toMatch(/captured at step 4 and replayed 1 times/);
    const resumed = await trained({}, true, 'resume-graph', { steps: 10, resume: true });
    // The first part's last step was evaluated (a run's last step is); the whole run's was not.
    expect(resumed.records[4]!.eval_loss).toBeDefined();
    const trainingOnly = (run: Run): Run => ({ ...run, records: run.records.map(({ loss, grad_norm }) => ({ loss, grad_norm })) });
    expectSameTraining(trainingOnly(resumed), trainingOnly(whole), 'resumed with the graph');
    expect(resumed.summary.stepGraph).toMatch(/captured at step 9 and replayed 1 times/);
  }, 300_000);

  it('Alpaca batches (a loss mask that counts other rows every step) replay bit for bit', async () => {
    const launched = await trained({ alpaca: true }, false, 'alpaca-launched');
    const graphed = await trained({ alpaca: true }, true, 'alpaca-graph');
    expectSameTraining(graphed, launched, 'alpaca');
    // The pool's buffers settle a step later than on Shakespeare (step 3 still takes new ones for
    // the longer rows): captured at step 5.
    expect(graphed.summary.stepGraph).toMatch(/captured at step 5 and replayed 3 times/);
  }, 300_000);

  it('adapter dropout (its seed in a device word, rewritten by each forward) is captured and replays bit for bit', async () => {
    const launched = await trained({ dropout: 0.1 }, false, 'dropout-launched');
    const graphed = await trained({ dropout: 0.1 }, true, 'dropout-graph');
    expectSameTraining(graphed, launched, 'dropout');
    expect(graphed.device.captures).toBe(1);
    expect(graphed.backwards).toEqual(['traced', 'traced', 'traced', 'captured', 'replayed', 'replayed', 'replayed', 'replayed']);
    expect(graphed.summary.stepGraph).toMatch(/captured at step 4 and replayed 4 times/);
  }, 300_000);

  it('a replay whose calls differ from the captured ones throws, naming the call', async () => {
    const device = new SimulatedModelOpDevice([], []);
    const { port, graph } = stepGraphPort(device);
    const buffer = port.alloc(16);
    // Steps 1 and 2 make the same calls, step 3 is captured, step 4 replays something else.
    for (let step = 1; step <= 3; step++) await graph.backward(step, async () => buffer.fill(0));
    expect(graph.state()).toMatchObject({ mode: 'graph', capturedAt: 3, replays: 0 });
    await expect(graph.backward(4, async () => buffer.fill(1))).rejects.toThrow(/a replayed backward made another device call than the captured one at call 1: fill \S+ 1 16 \(captured: fill \S+ 0 16\)/);
    // A backward that allocates is not captured, and the line names what it did.
    graph.unsettle('a test');
    for (let step = 5; step <= 8; step++) await graph.backward(step, async () => { port.alloc(8); });
    expect(device.captures).toBe(1);
    expect(graph.state()).toMatchObject({ mode: 'graph', capturedAt: 3 });
    const fresh = stepGraphPort(new SimulatedModelOpDevice([], []));
    for (let step = 1; step <= 4; step++) await fresh.graph.backward(step, async () => { fresh.port.alloc(8); });
    expect(fresh.graph.state()).toEqual({ mode: 'launches', why: 'the backward of step 4 made an allocation of 8 bytes' });
  });
});
