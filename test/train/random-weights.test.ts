// `qalc train --random-weights`: a spec without a checkpoint (a written-out architecture here;
// a preset is the same path) trains on seeded random weights. The run is deterministic in its
// seed, records it, and eval rebuilds the same weights from it; without the flag train refuses
// with a hint naming it. A tiny shape on a slice of tiny Shakespeare, a few steps each.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomLayerWeights, randomWeights, RANDOM_WEIGHT_STD, RANDOM_WEIGHTS_GENERATOR } from '../../src/model/random-weights.ts';
import { readSafetensors, writeSafetensorsAtomic } from '../../src/export/safetensors.ts';
import { planFrom } from '../support/inline-spec.ts';
import { cpuBackend } from '../../src/runtime/cpu/backend.ts';
import { evaluateRun } from '../../src/train/evaluate-run.ts';
import { Progress } from '../../src/train/progress.ts';
import { train, type TrainOptions } from '../../src/train/trainer.ts';
import { QaLoraModel } from '../../src/train/qalora-model.ts';
import { PROJECTIONS, specForEveryProjection } from '../../src/train/qalora-spec.ts';
import { quantizeAsDrawn } from '../../src/train/quantize-projection.ts';
import { planToSpec } from '../../src/train/plan-to-spec.ts';
import { packQweight } from '../../src/quant/gptq-pack.ts';
import { shakespeareSlice, TOK512 } from './tiny-model.ts';

const work = mkdtempSync(join(tmpdir(), 'qalc-random-weights-'));
const DATA = shakespeareSlice(work, 40_000);
const SPEC = join(work, 'shaped.qal');
const plan = planFrom(SPEC, `spec shaped
model {
  dim = 64  hidden_dim = 128  layers = 2  heads = 4  kv_heads = 2  vocab = 512  context = 64
  tokenizer = "${TOK512}"
}
quant { bits = 4  group = 16 }
adapter { rank = 4  alpha = 8 }
train {
  data = "${DATA}"
  seq_len = 32
  batch = 4
  steps = 40
  lr = 1e-2
  seed = 3
  eval_every = 40
}
`);

const { ops } = cpuBackend();

function quiet() {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => { lines.push(s); return true; } } as unknown as NodeJS.WriteStream;
  return { progress: new Progress(stream, 1), text: () => lines.join('') };
}

async function run(out: string, options: Partial<TrainOptions> = {}) {
  return train({ plan, specDir: work, out: join(work, out), ops, progress: quiet().progress, ...options });
}
const losses = (out: string) => readFileSync(join(work, out, 'train.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { loss: number }).loss);

describe('random weights', () => {
  it('are LLaMA-scaled, deterministic in the seed, and one layer alone equals that layer of the whole', () => {
    const arch = plan.model.architecture;
    const a = randomWeights(arch, 5);
    const wq = a.layers[1]!.wq.data;
    const mean = wq.reduce((s, x) => s + x, 0) / wq.length;
    const std = Math.sqrt(wq.reduce((s, x) => s + (x - mean) ** 2, 0) / wq.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(Math.abs(std - RANDOM_WEIGHT_STD)).toBeLessThan(0.001);
    expect([...a.layers[0]!.rmsAtt.data].every((x) => x === 1)).toBe(true);
    expect(randomLayerWeights(arch, 5, 1).w2.data).toEqual(a.layers[1]!.w2.data);
    expect(randomWeights(arch, 6).layers[1]!.wq.data).not.toEqual(wq);
    expect(a.layers[0]!.wq.data).not.toEqual(a.layers[1]!.wq.data);
  });

  it('drawn and quantized a row at a time, they give the model quantized from the whole float model, without its floats', () => {
    const arch = plan.model.architecture;
    // Every kind of projection: plain, pad = zero (down's 128 inputs padded to 144), fp16 and
    // symmetric scales, and one left in float (bits = null), whose floats are kept.
    const spec = specForEveryProjection(arch, (p, inFeatures, l) => ({
      bits: l === 1 && p === 'v' ? null : p === 'k' ? 3 : 4,
      group: p === 'down' ? 24 : 16, pad: p === 'down', symmetric: p === 'o', scaleDtype: p === 'up' ? 'fp16' : undefined,
      adapter: { rank: 4, alpha: 8, dropout: 0, pooling: 'mean' },
    }));
    const full = new QaLoraModel(randomWeights(arch, 5), spec, { seed: 2 });
    const leanWeights = randomWeights(arch, 5, quantizeAsDrawn(spec));
    const lean = new QaLoraModel(leanWeights, spec, { seed: 2 });
    expect(leanWeights.quantized!.size).toBe(2 * 7 - 1);
    expect(leanWeights.layers[0]!.w2.data).toHaveLength(0);
    expect(leanWeights.layers[0]!.w2.shape).toEqual([64, 128]);
    expect(leanWeights.layers[1]!.wv.data).toEqual(randomLayerWeights(arch, 5, 1).wv.data);
    for (let l = 0; l < 2; l++) {
      for (const p of PROJECTIONS) {
        expect(lean.blocks[l]![p].layer, `layers.${l}.${p}`).toEqual(full.blocks[l]![p].layer);
        expect(lean.blocks[l]![p].inFeatures).toBe(full.blocks[l]![p].inFeatures);
      }
    }
    const base = lean.blocks[0]!.down.layer.base;
    expect(base.kind === 'quantized' && base.weight.inFeatures).toBe(144);
  });

  it('train with a finite, falling loss; the same seed again gives the same losses, another seed others; eval rebuilds the run', async () => {
    const notes = quiet();
    const summary = await train({ plan, specDir: work, out: join(work, 'a'), ops, progress: notes.progress, randomWeights: { seed: 11 } });
    expect(notes.text()).toMatch(/WARNING: RANDOM WEIGHTS, seeded 11: .*mean nothing about a real model/);
    const first = losses('a');
    expect(first).toHaveLength(40);
    expect(first.every(Number.isFinite)).toBe(true);
    expect(summary.evalLossAfter).toBeLessThan(summary.evalLossBefore);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(first.slice(-10))).toBeLessThan(mean(first.slice(0, 10)) - 0.05);
    expect(summary.randomWeightsSeed).toBe(11);
    expect(JSON.parse(readFileSync(join(work, 'a', 'summary.json'), 'utf8')).randomWeightsSeed).toBe(11);

    await run('b', { randomWeights: { seed: 11 } });
    expect(losses('b')).toEqual(first);
    await run('c', { randomWeights: { seed: 12 } });
    expect(losses('c')).not.toEqual(first);

    const evaluated = await evaluateRun({ plan, specDir: work, checkpoint: join(work, 'a', 'checkpoint.safetensors'), ops });
    expect(evaluated.loss).toBeCloseTo(summary.evalLossAfter, 5);
  });

  it('a resumed run keeps its seed: another one, or none, is refused by name', async () => {
    await run('d', { randomWeights: {}, steps: 20 });
    await expect(run('d', { randomWeights: { seed: 4 }, resume: true })).rejects.toThrow(/was trained on random weights seeded 3, not --seed 4/);
    await expect(run('d', { resume: true })).rejects.toThrow(/resume it with --random-weights --seed 3/);
    // A checkpoint of the first generator's runs (no generator recorded) is refused, not given other weights.
    const old = readSafetensors(join(work, 'd', 'checkpoint.safetensors'));
    const { random_weights_generator: generator, ...firstGenerator } = old.metadata;
    expect(generator).toBe(RANDOM_WEIGHTS_GENERATOR);
    mkdirSync(join(work, 'old'));
    writeSafetensorsAtomic(join(work, 'old', 'checkpoint.safetensors'), [...old.tensors.values()], firstGenerator);
    await expect(evaluateRun({ plan, specDir: work, checkpoint: join(work, 'old', 'checkpoint.safetensors'), ops })).rejects.toThrow(/seeded 3 from qalc's first generator .*train it again/);
    const resumed = await run('d', { randomWeights: {}, resume: true });
    expect(resumed.resumedFrom).toBe(20);
    const whole = await run('e', { randomWeights: { seed: 3 } });
    expect(losses('d')).toEqual(losses('e'));
    expect(resumed.evalLossAfter).toBe(whole.evalLossAfter);
  });

  it('through the CLI: train says so loudly, eval reproduces its held-out loss, merge and generate rebuild the weights', async () => {
    const qalc = (...args: string[]) => spawnSync(process.execPath, ['src/cli/qalc.mjs', ...args], { encoding: 'utf8' });
    const out = join(work, 'cli');
    const trained = qalc('train', SPEC, '--random-weights', '--seed', '5', '--steps', '3', '--out', out);
    expect(trained.status, trained.stderr).toBe(0);
    expect(trained.stderr).toContain('WARNING: RANDOM WEIGHTS, seeded 5');
    expect(trained.stderr).toContain('WARNING: trained on RANDOM WEIGHTS seeded 5: these losses mean nothing about a real model');
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { evalLossAfter: number; randomWeightsSeed: number };
    expect(summary.randomWeightsSeed).toBe(5);
    const evaluated = qalc('eval', SPEC, '--out', out);
    expect(evaluated.status, evaluated.stderr).toBe(0);
    expect(evaluated.stderr).toContain('seeded 5');
    expect(Number(/loss (\S+)/.exec(evaluated.stdout)![1])).toBeCloseTo(summary.evalLossAfter, 5);
    // The command draws on worker threads (a file of its bundle), the sources here on one thread: the same weights.
    expect(trained.stderr).toMatch(/drawn and quantized on \d+ threads/);
    const inProcess = await evaluateRun({ plan, specDir: work, checkpoint: join(out, 'checkpoint.safetensors'), ops });
    expect(inProcess.loss).toBeCloseTo(summary.evalLossAfter, 5);
    const merged = qalc('merge', SPEC, '--out', out);
    expect(merged.status, merged.stderr).toBe(0);
    // The merge's codes (the frozen base, unchanged by merging) are the ones drawn here on one thread.
    const mergedFile = readSafetensors(join(out, 'merged.safetensors'));
    const here = randomWeights(plan.model.architecture, 5, quantizeAsDrawn(planToSpec(plan)));
    for (let l = 0; l < 2; l++) {
      const w = here.quantized!.get(`layers.${l}.down`)!;
      expect(mergedFile.tensors.get(`model.layers.${l}.mlp.down_proj.qweight`)!.data).toEqual(packQweight(w.q, w.inFeatures, w.outFeatures, w.bits));
    }
    const generated = qalc('generate', SPEC, '--out', out, '--steps', '4', '--prompt', 'Once');
    expect(generated.status, generated.stderr).toBe(0);
    expect(generated.stderr).toContain('seeded 5');
  }, 120_000);

  it('without --random-weights train refuses with a hint naming the flag, exit 1', () => {
    const result = spawnSync(process.execPath, ['src/cli/qalc.mjs', 'train', SPEC, '--out', join(work, 'refused')], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('--random-weights');
    const seedAlone = spawnSync(process.execPath, ['src/cli/qalc.mjs', 'train', SPEC, '--seed', '3', '--out', join(work, 'refused')], { encoding: 'utf8' });
    expect(seedAlone.status).toBe(1);
    expect(seedAlone.stderr).toContain('--seed seeds the random weights');
    const preset = spawnSync(process.execPath, ['src/cli/qalc.mjs', 'train', 'examples/llama2-7b-int4-g32.qal', '--out', join(work, 'refused')], { encoding: 'utf8' });
    expect(preset.status).toBe(1);
    expect(preset.stderr).toContain('spec llama2_7b_int4_g32: training needs the weights');
    expect(preset.stderr).toContain('--random-weights');
  });
});
