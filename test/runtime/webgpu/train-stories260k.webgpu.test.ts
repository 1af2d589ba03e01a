// `qalc train --backend webgpu` against the cpu backend on stories260K (4-bit RTN base, group 16,
// down projection group 43, rank 4; batch 2 × 16 tokens): the trainer runs the same steps, and
// the losses of the first three (and the held-out loss before training) agree to 1e-4 relative.
// The webgpu backend gets the spec's plan, so every quantized linear layer runs the spec's
// compiled WGSL kernels (forward, decode, backward_data, adapter_grad), none on the op kernels.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frontEnd } from '../../../src/compile.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { webGpuBackend, type WebGpuBackend } from '../../../src/runtime/webgpu/backend.ts';
import { train, type TrainSummary } from '../../../src/train/trainer.ts';
import type { TrainingOps } from '../../../src/runtime/ops.ts';
import { skipWebGpu, webGpuName } from '../../support/webgpu-driver.ts';

const shared = (path: string) => JSON.stringify(resolve('../shared', path));
const dir = mkdtempSync(join(tmpdir(), 'qalc-webgpu-train-'));
const specPath = join(dir, 'stories260k-webgpu.qal');
writeFileSync(specPath, `spec stories260k_webgpu
model {
  checkpoint = ${shared('models/stories260K/stories260K.bin')}
  tokenizer = ${shared('models/stories260K/tok512.bin')}
}
quant {
  bits = 4
  group = 16
}
override proj down {
  group = 43
}
adapter {
  kind = qalora
  rank = 4
  alpha = 8
}
train {
  data = ${shared('data/tinyshakespeare.txt')}
  seq_len = 16
  batch = 2
  steps = 3
  lr = 3e-3
  eval_every = 100
  checkpoint_every = 100
}
`);

let gpu: WebGpuBackend;
let plan: Plan;

beforeAll(async () => {
  const front = frontEnd(specPath);
  if (front.plan === undefined) throw new Error(front.diagnostics.map((d) => d.message).join('\n'));
  plan = front.plan;
  gpu = await webGpuBackend(plan);
});

afterAll(() => gpu?.close());

async function run(ops: TrainingOps, name: string): Promise<{ summary: TrainSummary; losses: number[] }> {
  const out = join(dir, name);
  const summary = await train({ plan, specDir: dir, out, evalBatches: 1, ops });
  const losses = readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((line) => (JSON.parse(line) as { loss: number }).loss);
  return { summary, losses };
}

describe.skipIf(skipWebGpu)(webGpuName('training stories260K on the webgpu backend'), () => {
  it('gives the cpu backend\'s losses for the first 3 steps (1e-4 relative)', async () => {
    const cpu = await run(cpuBackend().ops, 'cpu');
    const webgpu = await run(gpu.ops, 'webgpu');
    console.log(`stories260K, 2×16 tokens a step, on ${gpu.description}: losses ${webgpu.losses.map((l) => l.toFixed(6)).join(', ')} ` +
      `(cpu ${cpu.losses.map((l) => l.toFixed(6)).join(', ')}); ${webgpu.summary.tokensPerSecond.toFixed(0)} training tokens/s`);
    expect(webgpu.losses).toHaveLength(3);
    const stats = gpu.ops.linearStats!;
    console.log(gpu.report());
    expect(stats.fallbacks.size).toBe(0);
    expect(stats.fallbackForward + stats.fallbackBackward).toBe(0);
    expect(stats.compiledForward).toBeGreaterThan(0);
    expect(stats.compiledBackward).toBeGreaterThan(0);
    webgpu.losses.forEach((loss, step) => {
      expect(Math.abs(loss - cpu.losses[step]!) / cpu.losses[step]!, `loss at step ${step + 1}`).toBeLessThanOrEqual(1e-4);
    });
    expect(Math.abs(webgpu.summary.evalLossBefore - cpu.summary.evalLossBefore) / cpu.summary.evalLossBefore).toBeLessThanOrEqual(1e-4);
    expect(Math.abs(webgpu.summary.evalLossAfter - cpu.summary.evalLossAfter) / cpu.summary.evalLossAfter).toBeLessThanOrEqual(1e-4);
  });
});
