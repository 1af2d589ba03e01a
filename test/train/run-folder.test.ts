// A run folder as the user relies on it: one process writes it at a time, its records describe the whole run even when it was
// resumed, a resume keeps the run's learning-rate schedule, a checkpoint fits every spec that
// plans the same adapters (other changes are reported), and train's and eval's held-out losses
// are the same number over the whole held-out split. stories260K on a slice of tiny
// Shakespeare, a few steps each.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Plan } from '../../src/plan/plan.ts';
import { evaluateRun } from '../../src/train/evaluate-run.ts';
import { readSafetensors } from '../../src/export/safetensors.ts';
import { mergeRun } from '../../src/train/merge-run.ts';
import { planFrom } from '../support/inline-spec.ts';
import { cpuBackend } from '../../src/runtime/cpu/backend.ts';
import { Progress } from '../../src/train/progress.ts';
import { train, type TrainOptions } from '../../src/train/trainer.ts';
import { STORIES260K, TINY_SHAKESPEARE, TOK512 } from './tiny-model.ts';
import { readHfCheckpoint } from '../../src/model/hf-checkpoint.ts';
import { LlamaForward, type DecodeModel } from '../../src/model/llama-forward.ts';
import { cpuAddonAvailable } from '../../src/runtime/cpu/addon.ts';
import { NativeLlamaForward } from '../../src/runtime/cpu/native-llama-forward.ts';
import { adapterHash } from '../../src/train/run-identity.ts';

const work = mkdtempSync(join(tmpdir(), 'qalc-run-folder-'));
const DATA = join(work, 'shakespeare.txt');
writeFileSync(DATA, readFileSync(TINY_SHAKESPEARE, 'utf8').slice(0, 60_000));

function specText(train: string, extra = '', adapter = 'rank = 4  alpha = 8', checkpoint = STORIES260K, tokenizer: string | undefined = TOK512): string {
  return `spec runs
model {
  checkpoint = "${checkpoint}"
  ${tokenizer ? `tokenizer = "${tokenizer}"` : ''}
}
quant { bits = 4  group = 16 }
override proj down { group = 43 }
adapter { ${adapter} }
train {
  data = "${DATA}"
  seq_len = 32
  batch = 4
  lr = 3e-3
  seed = 7
  ${train}
}
${extra}`;
}

/** A Progress whose messages a test can read, and that can stop the run like a kill. */
function recorder(killAfterStep?: number) {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => { lines.push(s); return true; } } as unknown as NodeJS.WriteStream;
  const progress = new Progress(stream, 1);
  const update = progress.update.bind(progress);
  progress.update = (u) => {
    update(u);
    if (killAfterStep !== undefined && u.step === killAfterStep) throw new Error('killed');
  };
  return { progress, text: () => lines.join('') };
}

interface LogLine { step: number; loss: number; lr: number; eval_loss?: number }
const log = (out: string) => readFileSync(join(out, 'train.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine);
const summaryOf = (out: string) => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, number | null>;

const { ops } = cpuBackend();

async function run(plan: Plan, out: string, options: Partial<TrainOptions> = {}) {
  return train({ plan, specDir: work, out, ops, progress: recorder().progress, ...options });
}

describe('a Hugging Face checkpoint', () => {
  it('trains, evaluates and merges like the llama2.c file of the same model', async () => {
    const settings = 'steps = 3\n  eval_every = 3';
    const fromBin = planFrom(join(work, 'bin.qal'), specText(settings));
    const fromHf = planFrom(join(work, 'hf.qal'), specText(settings, '', undefined, join(STORIES260K, '../../stories260K-hf')));
    expect(fromHf.model.checkpoint?.format).toBe('hf');
    await run(fromBin, join(work, 'from-bin'));
    await run(fromHf, join(work, 'from-hf'));
    const losses = (out: string) => log(out).map((l) => [l.loss, l.eval_loss]);
    expect(losses(join(work, 'from-hf'))).toEqual(losses(join(work, 'from-bin')));
    expect(losses(join(work, 'from-bin'))).toHaveLength(3);
    // With no tokenizer named, the directory's tokenizer.json: the same ids, so the same losses;
    // and a SentencePiece .model trains (60,000 characters of Shakespeare have no double space).
    const ownTokenizer = planFrom(join(work, 'hf-own.qal'), specText(settings, '', undefined, join(STORIES260K, '../../stories260K-hf'), undefined));
    await run(ownTokenizer, join(work, 'from-hf-own'));
    expect(losses(join(work, 'from-hf-own'))).toEqual(losses(join(work, 'from-bin')));
    const sentencePiece = planFrom(join(work, 'spm.qal'), specText(settings, '', undefined, STORIES260K, join(STORIES260K, '../tok512.model')));
    await run(sentencePiece, join(work, 'from-spm'));
    expect(losses(join(work, 'from-spm'))).toEqual(losses(join(work, 'from-bin')));
    // eval and merge read the same weights too: the same held-out loss, the same merged tensors
    // byte for byte (the metadata's plan names each spec's own checkpoint).
    const evaluate = (plan: Plan, out: string) => evaluateRun({ ops, plan, specDir: work, checkpoint: join(work, out, 'checkpoint.safetensors'), batches: 2 }).then((r) => r.loss);
    expect(await evaluate(fromHf, 'from-hf')).toBe(await evaluate(fromBin, 'from-bin'));
    const merge = async (plan: Plan, out: string) => {
      await mergeRun(plan, work, join(work, out, 'checkpoint.safetensors'), join(work, out, 'merged.safetensors'), ops);
      const file = readSafetensors(join(work, out, 'merged.safetensors'));
      const { plan: _, ...metadata } = file.metadata;
      return { metadata, tensors: [...file.tensors.values()].map((t) => [t.name, t.shape, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')]) };
    };
    expect(await merge(fromHf, 'from-hf')).toEqual(await merge(fromBin, 'from-bin'));
  });
});

describe('a Hugging Face checkpoint whose config.json has its own rope_theta and rms_norm_eps', () => {
  // stories260K-hf's weights under rope_theta 1e6 and rms_norm_eps 1e-6 (a copy in the temp dir): another function.
  const original = join(STORIES260K, '../../stories260K-hf');
  const changed = join(work, 'stories260K-hf-theta');
  mkdirSync(changed);
  for (const file of ['model.safetensors', 'tokenizer.json']) copyFileSync(join(original, file), join(changed, file));
  const config = JSON.parse(readFileSync(join(original, 'config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(changed, 'config.json'), JSON.stringify({ ...config, rms_norm_eps: 1e-6, rope_parameters: { rope_theta: 1e6, rope_type: 'default' } }));

  it('gives other logits than the original, the same in LlamaForward and the native decoder', () => {
    const logits = (dir: string, Model: new (c: ReturnType<typeof readHfCheckpoint>) => DecodeModel) => {
      const model = new Model(readHfCheckpoint(dir));
      return [1, 403, 407, 261].map((token, pos) => Float32Array.from(model.forward(token, pos)));
    };
    const before = logits(original, LlamaForward), after = logits(changed, LlamaForward);
    expect(readHfCheckpoint(changed).arch).toMatchObject({ ropeTheta: 1e6, rmsNormEps: 1e-6 });
    // Position 0 rotates by nothing: there only ε moves the logits, and slightly; later positions turn by other angles.
    for (let pos = 0; pos < 4; pos++) expect(after[pos]).not.toEqual(before[pos]);
    const gap = (pos: number) => Math.max(...after[pos]!.map((v, i) => Math.abs(v - before[pos]![i]!)));
    expect(gap(3)).toBeGreaterThan(100 * gap(0));
    if (cpuAddonAvailable()) {
      const native = logits(changed, NativeLlamaForward);
      native.forEach((row, pos) => row.forEach((v, i) => expect(v).toBeCloseTo(after[pos]![i]!, 5)));
    }
  });

  it('plans, trains, evaluates and merges with them: other losses, another adapter hash, θ and ε in the merged file', async () => {
    const settings = 'steps = 2\n  eval_every = 2';
    const plain = planFrom(join(work, 'theta-plain.qal'), specText(settings, '', undefined, original));
    const plan = planFrom(join(work, 'theta.qal'), specText(settings, '', undefined, changed));
    expect(plan.model.architecture).toMatchObject({ ropeTheta: 1e6, rmsNormEps: 1e-6 });
    expect(adapterHash(plan)).not.toBe(adapterHash(plain));
    await run(plain, join(work, 'theta-plain'));
    await run(plan, join(work, 'theta'));
    const losses = (out: string) => log(out).map((l) => l.loss);
    expect(losses(join(work, 'theta')).every(Number.isFinite)).toBe(true);
    expect(losses(join(work, 'theta'))[0]).not.toBe(losses(join(work, 'theta-plain'))[0]);
    const checkpoint = join(work, 'theta', 'checkpoint.safetensors');
    const held = await evaluateRun({ ops, plan, specDir: work, checkpoint, batches: 2 });
    expect(Number.isFinite(held.loss)).toBe(true);
    expect(held.loss).not.toBe((await evaluateRun({ ops, plan: plain, specDir: work, checkpoint: join(work, 'theta-plain', 'checkpoint.safetensors'), batches: 2 })).loss);
    const merged = join(work, 'theta', 'merged.safetensors');
    await mergeRun(plan, work, checkpoint, merged, ops);
    expect(JSON.parse(readSafetensors(merged).metadata.architecture!)).toMatchObject({ ropeTheta: 1e6, rmsNormEps: 1e-6 });
    // The merged model runs under the same θ and ε: its held-out loss is the adapted model's.
    expect((await evaluateRun({ ops, plan, specDir: work, mergedModel: merged, batches: 2 })).loss).toBeCloseTo(held.loss, 4);
  });
});

describe('a resumed run', () => {
  const spec = join(work, 'cosine.qal');
  const plan = planFrom(spec, specText('steps = 6\n  schedule = cosine\n  warmup = 1\n  eval_every = 2\n  checkpoint_every = 3'));
  const whole = join(work, 'whole');
  const killed = join(work, 'killed');

  it('writes summary.json and loss.svg for the whole run, as an uninterrupted one does', async () => {
    await run(plan, whole);
    await expect(run(plan, killed, { progress: recorder(4).progress })).rejects.toThrow('killed');
    expect(log(killed).map((l) => l.step)).toEqual([1, 2, 3, 4]);
    await run(plan, killed, { resume: true, progress: recorder().progress });
    expect(log(killed)).toEqual(log(whole).map((l) => expect.objectContaining({ step: l.step, loss: l.loss, lr: l.lr })));
    const [a, b] = [summaryOf(whole), summaryOf(killed)];
    for (const key of ['steps', 'firstLoss', 'lastLoss', 'evalLossBefore', 'evalLossAfter', 'evalTokens']) expect(b[key], key).toBe(a[key]);
    expect(b.resumedFrom).toBe(3);
    expect(readFileSync(join(killed, 'loss.svg'), 'utf8')).toBe(readFileSync(join(whole, 'loss.svg'), 'utf8'));
  });

  it('continues exactly when recompute changed before the resume (it changes no result), naming the change', async () => {
    const recomputing = planFrom(join(work, 'cosine-recompute.qal'), specText('steps = 6\n  schedule = cosine\n  warmup = 1\n  eval_every = 2\n  checkpoint_every = 3\n  recompute = blocks'));
    const switched = join(work, 'switched');
    await expect(run(plan, switched, { progress: recorder(4).progress })).rejects.toThrow('killed');
    const notes = recorder();
    await run(recomputing, switched, { resume: true, progress: notes.progress });
    expect(notes.text()).toContain('train.recompute none → blocks');
    expect(log(switched)).toEqual(log(whole).map((l) => expect.objectContaining({ step: l.step, loss: l.loss, lr: l.lr, ...(l.eval_loss === undefined ? {} : { eval_loss: l.eval_loss }) })));
  });

  it('keeps the schedule it began with when --steps changes, and says so', async () => {
    const shorter = join(work, 'shorter');
    await expect(run(plan, shorter, { progress: recorder(4).progress })).rejects.toThrow('killed');
    const notes = recorder();
    await run(plan, shorter, { resume: true, steps: 5, progress: notes.progress });
    // Steps 4 and 5 take the 6-step schedule's learning rates, not a 5-step one's.
    expect(log(shorter).map((l) => l.lr)).toEqual(log(whole).slice(0, 5).map((l) => l.lr));
    expect(notes.text()).toMatch(/stopping at step 5 of this run's 6-step cosine schedule/);
  });

  it('refuses to run past the end of a decaying schedule, and has nothing to do on a finished run', async () => {
    await expect(run(plan, whole, { resume: true, steps: 12, progress: recorder().progress }))
      .rejects.toThrow(/12 steps run past the end of this run's 6-step cosine schedule/);
    await expect(run(plan, whole, { resume: true, steps: 4, progress: recorder().progress })).rejects.toThrow(/already at step 6/);
    const before = readFileSync(join(whole, 'train.jsonl'), 'utf8');
    const notes = recorder();
    await run(plan, whole, { resume: true, progress: notes.progress });
    expect(notes.text()).toContain('complete at step 6: nothing to train');
    expect(readFileSync(join(whole, 'train.jsonl'), 'utf8')).toBe(before);
  });
});

describe('a run and the spec that uses it later', () => {
  it('resume, eval and merge accept a spec whose train, export or target blocks changed, naming the changes', async () => {
    const dir = join(work, 'edited');
    mkdirSync(dir);
    const spec = join(dir, 'edited.qal');
    const out = join(dir, 'run');
    const original = planFrom(spec, specText('steps = 2\n  checkpoint_every = 2'));
    await run(original, out);
    // The same adapters, from a spec read by another path, with more steps, lines moved, an
    // export block and a target.
    const edited = planFrom(join(dir, '.', 'edited.qal'), `# a comment moves every line\n${specText('steps = 3\n  checkpoint_every = 1', 'export { formats = [safetensors] }\ntarget wgsl { precision = f32 }\n')}`);
    const notes = recorder();
    await run(edited, out, { resume: true, progress: notes.progress });
    expect(notes.text()).toContain('train.steps 2 → 3');
    expect(notes.text()).toContain('export added');
    // The checkpoint now records the edited spec; the original one differs from it.
    const evaluated = await evaluateRun({ ops, plan: original, specDir: dir, checkpoint: join(out, 'checkpoint.safetensors') });
    expect(evaluated.what).toContain('(step 3)');
    expect(evaluated.notices.join('\n')).toContain('train.checkpoint_every 1 → 2');
    expect(evaluated.notices.join('\n')).toContain('export removed');
    // A copy of the spec under another name plans the same adapters.
    const renamed = planFrom(join(dir, 'renamed.qal'), specText('steps = 3\n  checkpoint_every = 1').replace('spec runs', 'spec renamed'));
    const fromRenamed = await evaluateRun({ ops, plan: renamed, specDir: dir, checkpoint: join(out, 'checkpoint.safetensors') });
    expect(fromRenamed.notices.join('\n')).toContain('spec runs → renamed');
    expect(fromRenamed.loss).toBe((await evaluateRun({ ops, plan: edited, specDir: dir, checkpoint: join(out, 'checkpoint.safetensors') })).loss);
    copyFileSync(join(out, 'checkpoint.safetensors'), join(dir, 'copy.safetensors'));
    const merged = await mergeRun(edited, dir, join(dir, 'copy.safetensors'), join(dir, 'merged.safetensors'), ops);
    expect(merged.step).toBe(3);
  });

  it('still refuses a checkpoint whose adapters have another shape', async () => {
    const dir = join(work, 'reshaped');
    mkdirSync(dir);
    const spec = join(dir, 'reshaped.qal');
    const out = join(dir, 'run');
    await run(planFrom(spec, specText('steps = 1')), out);
    const rank2 = planFrom(spec, specText('steps = 1', '', 'rank = 2  alpha = 4'));
    await expect(evaluateRun({ ops, plan: rank2, specDir: dir, checkpoint: join(out, 'checkpoint.safetensors') })).rejects.toThrow(/its adapters do not fit this one/);
    await expect(run(rank2, out, { resume: true, progress: recorder().progress })).rejects.toThrow(/cannot resume this one/);
  });
});

describe('held-out loss', () => {
  it('is the same number in train and in eval: the whole held-out split', async () => {
    const spec = join(work, 'heldout.qal');
    const plan = planFrom(spec, specText('steps = 2'));
    const out = join(work, 'heldout');
    const summary = await run(plan, out, { progress: recorder().progress });
    const evaluated = await evaluateRun({ ops, plan, specDir: work, checkpoint: join(out, 'checkpoint.safetensors') });
    expect(evaluated.loss).toBe(summary.evalLossAfter);
    expect(evaluated.tokens).toBe(summary.evalTokens);
    // Every window of the held-out part: all but the last (at most seq_len) tokens count.
    const { dataset } = await import('../../src/train/trainer.ts').then((m) => m.setUpTraining(plan, work));
    expect(evaluated.tokens).toBeGreaterThan(dataset.evalTokens - 32 - 1);
    expect(evaluated.tokens).toBeLessThanOrEqual(dataset.evalTokens - 1);
  });
});

describe('one writer at a time', () => {
  const spec = join(work, 'locked.qal');
  const plan = planFrom(spec, specText('steps = 2'));
  const lockOf = (pid: number) => JSON.stringify({ pid, host: hostname(), verb: 'train', since: '2026-12-01T20:00:00.000Z' });

  it('refuses a folder that a live process holds, and takes over the lock of a dead one', async () => {
    const out = join(work, 'held');
    mkdirSync(out);
    const holder = spawn('sleep', ['60']);
    try {
      writeFileSync(join(out, 'run.lock'), lockOf(holder.pid!));
      await expect(run(plan, out)).rejects.toThrow(`${out} is in use by qalc train (pid ${holder.pid}, since 2026-12-01T20:00:00.000Z): wait for it to finish, or choose another --out`);
      await expect(mergeRun(plan, work, join(out, 'checkpoint.safetensors'), join(out, 'merged.safetensors'), ops)).rejects.toThrow(/no run to merge/);
      expect(existsSync(join(out, 'train.jsonl'))).toBe(false);
    } finally {
      holder.kill();
    }
    const dead = spawnSync('true').pid;
    writeFileSync(join(out, 'run.lock'), lockOf(dead));
    const notes = recorder();
    await run(plan, out, { progress: notes.progress });
    expect(notes.text()).toContain(`note: ${join(out, 'run.lock')} was left by qalc train (pid ${dead}, since 2026-12-01T20:00:00.000Z), which is no longer running: taking it over`);
    expect(existsSync(join(out, 'run.lock'))).toBe(false);
    // merge writes into the folder too: it waits for no one, it refuses.
    const blocker = spawn('sleep', ['60']);
    try {
      writeFileSync(join(out, 'run.lock'), lockOf(blocker.pid!));
      await expect(mergeRun(plan, work, join(out, 'checkpoint.safetensors'), join(out, 'merged.safetensors'), ops)).rejects.toThrow(`is in use by qalc train (pid ${blocker.pid}`);
      const evaluated = await evaluateRun({ ops, plan, specDir: work, checkpoint: join(out, 'checkpoint.safetensors') });
      expect(evaluated.notices.join('\n')).toContain(`is still being written by qalc train (pid ${blocker.pid}`);
    } finally {
      blocker.kill();
    }
  });

  it('of two trainings started into one folder, the second exits 1 and the first writes its run alone', async () => {
    const busy = join(work, 'busy.qal');
    writeFileSync(busy, specText('steps = 150\n  eval_every = 1000'));
    const out = join(work, 'busy');
    const qalc = ['src/cli/qalc.mjs', 'train', busy, '--out', out];
    const first = spawn(process.execPath, qalc, { stdio: 'ignore' });
    const exited = new Promise<number | null>((done) => first.on('exit', done));
    let running = true;
    void exited.then(() => { running = false; });
    while (running && !existsSync(join(out, 'run.lock'))) await new Promise((done) => setTimeout(done, 20));
    expect(running, 'the first training holds run.lock while it runs').toBe(true);
    const second = spawnSync(process.execPath, qalc, { encoding: 'utf8' });
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`${out} is in use by qalc train (pid ${first.pid}`);
    expect(await exited).toBe(0);
    expect(log(out).map((l) => l.step)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    expect(existsSync(join(out, 'run.lock'))).toBe(false);
  }, 60_000);
});
