// NaN in training, merging and evaluation: found where it starts, named there, and never
// described as safe when it is not ("the last checkpoint is kept" when there is none).
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { frontEnd } from '../../src/compile.ts';
import { readSafetensors, writeSafetensorsAtomic } from '../../src/export/safetensors.ts';
import type { Architecture } from '../../src/model/architecture.ts';
import { llama2cWeightCount } from '../../src/model/llama2c-header.ts';
import type { Plan } from '../../src/plan/plan.ts';
import { evaluateRun } from '../../src/train/evaluate-run.ts';
import { mergeRun } from '../../src/train/merge-run.ts';
import { Progress } from '../../src/train/progress.ts';
import { train } from '../../src/train/trainer.ts';
import { writeLlama2c } from '../support/llama2c-file.ts';
import { TINY_SHAKESPEARE, TOK512 } from './tiny-model.ts';

const work = mkdtempSync(join(tmpdir(), 'qalc-nan-'));
const ARCH: Architecture = { dim: 16, hiddenDim: 32, layers: 1, heads: 2, kvHeads: 2, vocab: 512, context: 16, tiedEmbeddings: true, ropeTheta: 10000, rmsNormEps: 1e-5 };
const weights = llama2cWeightCount(ARCH);
const data = join(work, 'data.txt');
writeFileSync(data, readFileSync(TINY_SHAKESPEARE, 'utf8').slice(0, 20_000));
const quiet = new Progress({ write: () => true } as unknown as NodeJS.WriteStream);

/** A spec over a tiny llama2.c model; `poison` puts values into its weights. */
function plan(name: string, trainSettings: string, poison: Record<number, number> = {}, quant = ''): Plan {
  const checkpoint = writeLlama2c(join(work, `${name}.bin`), ARCH, weights, { 300: 0.5, 301: -0.3, 900: 0.2, ...poison });
  const spec = join(work, `${name}.qal`);
  writeFileSync(spec, `spec ${name}
model {
  checkpoint = "${checkpoint}"
  tokenizer = "${TOK512}"
}
quant { bits = 4  group = 8  ${quant} }
adapter { rank = 2  alpha = 4 }
train {
  data = "${data}"
  seq_len = 8
  batch = 2
  warmup = 0
  schedule = constant
  max_grad_norm = 1e30
  ${trainSettings}
}
`);
  const result = frontEnd(spec);
  if (!result.plan) throw new Error(result.diagnostics.map((d) => d.message).join('\n'));
  return result.plan;
}

const run = (p: Plan, out: string, options: { steps?: number; resume?: boolean } = {}) =>
  train({ plan: p, specDir: work, out: join(work, out), progress: quiet, evalBatches: 1, ...options });

async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the run to fail');
}

describe('non-finite values', () => {
  it('a NaN in the base checkpoint is named by tensor before training starts', async () => {
    const message = await failure(run(plan('nanbase', 'lr = 1e-3  steps = 2', { [512 * 16 + 16 + 5]: NaN }), 'nanbase'));
    expect(message).toMatch(/nanbase\.bin: tensor layers\.0\.wq \[16, 16\] holds NaN at \[0, 5\]/);
    expect(message).not.toMatch(/\.A\b|\.B\b/);
  });

  it('a diverging run says that no checkpoint exists when none was written', async () => {
    const message = await failure(run(plan('diverge', 'lr = 1e30  steps = 20  checkpoint_every = 100  eval_every = 100'), 'diverge'));
    expect(message).toMatch(/at step \d+/);
    expect(message).toContain('no checkpoint has been written yet');
    expect(message).not.toContain('is kept');
    expect(existsSync(join(work, 'diverge', 'checkpoint.safetensors'))).toBe(false);
  });

  it('a run that diverges after a checkpoint keeps that one, finite, and says which', async () => {
    // A resumed run keeps its schedule, so the learning rate that blows up is the run's own: a
    // constant one (the helper's) large enough that a few steps overflow the adapters.
    const message = await failure(run(plan('later', 'lr = 1e15  steps = 40  checkpoint_every = 1  eval_every = 100'), 'later'));
    const checkpoint = join(work, 'later', 'checkpoint.safetensors');
    const file = readSafetensors(checkpoint);
    const kept = Number(file.metadata.step);
    expect(message).toContain(`the checkpoint of step ${kept} (${checkpoint}) is kept`);
    expect(kept).toBeGreaterThanOrEqual(1);
    for (const t of file.tensors.values()) for (const v of t.data) expect(Number.isFinite(v)).toBe(true);
  });

  it('eval names a NaN adapter in a run\'s checkpoint instead of printing loss NaN', async () => {
    const p = plan('evalnan', 'lr = 1e-3  steps = 1  eval_every = 100');
    await run(p, 'evalnan');
    const checkpoint = join(work, 'evalnan', 'checkpoint.safetensors');
    const file = readSafetensors(checkpoint);
    const name = [...file.tensors.keys()].find((n) => n.endsWith('.B'))!;
    writeSafetensorsAtomic(checkpoint, [...file.tensors.values()].map((t) => (t.name === name ? { ...t, data: Float32Array.from(t.data, (v, i) => (i === 1 ? NaN : v)) } : t)), { ...file.metadata });
    const message = await failure(evaluateRun({ plan: p, specDir: work, batches: 1, checkpoint }));
    expect(message).toBe(`${checkpoint}: tensor ${name} holds NaN at index 1: the run diverged, or the file is damaged`);
  });

  it('eval names a NaN tensor of a merged model instead of printing loss NaN', async () => {
    const p = plan('mergednan', 'lr = 1e-3  steps = 1  eval_every = 100');
    await run(p, 'mergednan');
    const merged = join(work, 'mergednan', 'merged.safetensors');
    await mergeRun(p, work, join(work, 'mergednan', 'checkpoint.safetensors'), merged);
    const file = readSafetensors(merged);
    const name = 'model.layers.0.self_attn.v_proj.zeros';
    writeSafetensorsAtomic(merged, [...file.tensors.values()].map((t) => (t.name === name ? { ...t, data: new Float32Array(t.data.length).fill(NaN) } : t)), { ...file.metadata });
    const message = await failure(evaluateRun({ plan: p, specDir: work, batches: 1, mergedModel: merged }));
    expect(message).toBe(`${merged}: tensor ${name} holds NaN at index 0: the model is damaged, or was merged from a run that diverged`);
  });
});

describe('weights that are finite but overflow', () => {
  it('eval stops with an error instead of printing loss NaN', async () => {
    // rms_att and wq of layer 0 near float32's largest value: q = wq · (rms_att ⊙ x) overflows.
    const huge = Object.fromEntries(Array.from({ length: 16 + 256 }, (_, i) => [512 * 16 + i, i % 3 === 0 ? -3e38 : 3e38]));
    // fp16 scales cannot hold such weights, and say so before anything runs.
    expect(await failure(evaluateRun({ plan: plan('overflow16', 'lr = 1e-3  steps = 1', huge), specDir: work, batches: 1 })))
      .toMatch(/^layers\.0\.q: the scale .* is Infinity in fp16: its weights are too large for fp16 scales; set `scale = fp32`$/);
    const p = plan('overflow', 'lr = 1e-3  steps = 1', huge, 'scale = fp32');
    const message = await failure(evaluateRun({ plan: p, specDir: work, batches: 1 }));
    expect(message).toMatch(/^the held-out loss of overflow, quantized, adapters at initialisation \(B = 0\) is (NaN|-?Infinity): the model's activations overflow/);
  });
});
