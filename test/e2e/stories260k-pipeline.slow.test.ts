// The whole pipeline on a real model, as a user runs it: check → train → merge → eval →
// generate on stories260K with tiny Shakespeare, through the qalc command. Slow (a minute).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stories260kSpec } from '../support/inline-spec.ts';

const SHARED = resolve('../shared');
const work = mkdtempSync(join(tmpdir(), 'qalc-e2e-'));

function qalc(args: string[]) {
  const r = spawnSync(process.execPath, ['src/cli/qalc.mjs', ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A small, fast version of examples/stories260k.qal with checkpoints every few steps. */
function writeSpec(name: string, train: string): string {
  const path = join(work, `${name}.qal`);
  writeFileSync(path, stories260kSpec(name, `seq_len = 32
  batch = 4
  lr = 3e-3
  seed = 7
  eval_every = 10
  ${train}`));
  return path;
}

interface LogLine { step: number; loss: number; lr: number; tokens_per_s: number; eval_loss?: number }

function log(dir: string): LogLine[] {
  return readFileSync(join(dir, 'train.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogLine);
}

describe('stories260K end to end', () => {
  const spec = writeSpec('e2e', 'checkpoint_every = 5\n  schedule = cosine\n  warmup = 3');
  const run = join(work, 'run');

  beforeAll(() => {
    const r = qalc(['train', spec, '--steps', '40', '--out', run]);
    expect(r.stderr).toContain('held-out loss');
    expect(r.status, r.stderr).toBe(0);
  }, 300_000);

  it('fine-tunes: the held-out loss on tiny Shakespeare falls clearly', () => {
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as { evalLossBefore: number; evalLossAfter: number };
    console.log(`held-out loss ${summary.evalLossBefore.toFixed(4)} → ${summary.evalLossAfter.toFixed(4)}`);
    expect(summary.evalLossAfter).toBeLessThan(summary.evalLossBefore - 0.3);
    const lines = log(run);
    expect(lines.map((l) => l.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (const l of lines) expect(Object.keys(l)).toEqual(expect.arrayContaining(['step', 'loss', 'lr', 'tokens_per_s']));
    expect(readFileSync(join(run, 'loss.svg'), 'utf8')).toMatch(/^<svg[\s\S]*<polyline[\s\S]*<\/svg>\n$/);
  });

  it('merges the adapters into the zero points without changing the model', () => {
    const merged = qalc(['merge', spec, '--out', run]);
    expect(merged.status, merged.stderr).toBe(0);
    const before = qalc(['eval', spec, '--out', run]);
    const after = qalc(['eval', spec, '--model', join(run, 'merged.safetensors')]);
    const loss = (s: string) => Number(/^loss (\S+)/.exec(s)![1]);
    expect(before.status, before.stderr).toBe(0);
    expect(after.status, after.stderr).toBe(0);
    expect(Math.abs(loss(after.stdout) - loss(before.stdout)) / loss(before.stdout)).toBeLessThanOrEqual(1e-4);
  });

  it('generates from the merged model and from the spec\'s run alike', () => {
    const fromMerged = qalc(['generate', join(run, 'merged.safetensors'), '--tokenizer', `${SHARED}/models/stories260K/tok512.bin`, '--steps', '40', '--prompt', 'KING']);
    const fromSpec = qalc(['generate', spec, '--out', run, '--steps', '40', '--prompt', 'KING']);
    expect(fromMerged.status, fromMerged.stderr).toBe(0);
    expect(fromMerged.stdout.startsWith('KING')).toBe(true);
    expect(fromSpec.stdout).toBe(fromMerged.stdout);
  });

  it('resumes a killed run where it stopped, with the same loss curve', async () => {
    const killed = join(work, 'killed');
    const child = spawn(process.execPath, ['src/cli/qalc.mjs', 'train', spec, '--steps', '40', '--out', killed], { stdio: 'ignore' });
    // Kill it without warning once it is past a checkpoint but not done.
    const killStep = 8 + Math.floor(Math.random() * 20);
    await new Promise<void>((done, fail) => {
      const timer = setInterval(() => {
        const path = join(killed, 'train.jsonl');
        if (existsSync(path) && readFileSync(path, 'utf8').split('\n').length > killStep) {
          child.kill('SIGKILL');
          clearInterval(timer);
          done();
        }
      }, 20);
      child.on('exit', () => { clearInterval(timer); fail(new Error('the run ended before it could be killed')); });
    });
    await new Promise((done) => child.on('exit', done));
    const resumed = qalc(['train', spec, '--steps', '40', '--out', killed, '--resume']);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming e2e at step \d+/);
    const strip = (lines: LogLine[]) => lines.map(({ step, loss, lr, eval_loss }) => ({ step, loss, lr, eval_loss }));
    expect(strip(log(killed))).toEqual(strip(log(run)));
  }, 300_000);

  it('refuses to overwrite a run, and names a truncated checkpoint', () => {
    expect(qalc(['train', spec, '--steps', '2', '--out', run])).toMatchObject({ status: 1, stderr: expect.stringContaining('already holds a run') });
    const broken = join(work, 'broken');
    expect(qalc(['train', spec, '--steps', '5', '--out', broken]).status).toBe(0);
    truncateSync(join(broken, 'checkpoint.safetensors'), 2000);
    const r = qalc(['train', spec, '--steps', '10', '--out', broken, '--resume']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/checkpoint\.safetensors: truncated: (tensor \S+ ends|the header says)/);
  }, 120_000);

  it('stops on a diverging loss, naming the step, and says which checkpoint is kept', () => {
    const diverging = writeSpec('diverging', 'checkpoint_every = 1\n  max_grad_norm = 1e30');
    writeFileSync(diverging, readFileSync(diverging, 'utf8').replace('lr = 3e-3', 'lr = 1e30'));
    const out = join(work, 'diverging');
    const r = qalc(['train', diverging, '--steps', '20', '--out', out]);
    expect(r.status).toBe(1);
    // Either a gradient or the loss went non-finite; both name the layer.
    expect(r.stderr).toMatch(/qalc train: the (gradient of layers\.\d+\.\w+\.[AB] is (NaN|-?Infinity) at step \d+:|loss is (NaN|-?Infinity) at step \d+: (adapter layers\.\d+\.\w+\.[AB] holds non-finite values|the forward overflowed; the largest adapter values are in layers\.\d+\.\w+\.[AB] \(max \|value\| [\d.e+]+\));|update of step \d+ made adapter layers\.\d+\.\w+\.[AB] non-finite \(learning rate [\d.e+]+\);) stopping; (no checkpoint has been written yet|the checkpoint of step \d+ \(.+\) is kept)/);
    expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(!r.stderr.includes('no checkpoint has been written yet'));
  }, 120_000);

  it('names missing or empty data and an unreadable tokenizer', () => {
    const noData = writeSpec('nodata', '');
    writeFileSync(noData, readFileSync(noData, 'utf8').replace(`${SHARED}/data/tinyshakespeare.txt`, join(work, 'missing.txt')));
    expect(qalc(['train', noData, '--steps', '1', '--out', join(work, 'nodata')]).stderr).toContain('missing.txt: cannot read training data: no such file');
    const empty = join(work, 'empty.txt');
    writeFileSync(empty, '');
    writeFileSync(noData, readFileSync(noData, 'utf8').replace(join(work, 'missing.txt'), empty));
    expect(qalc(['train', noData, '--steps', '1', '--out', join(work, 'empty')]).stderr).toContain('empty.txt: the training data is empty');
    const r = qalc(['generate', `${SHARED}/models/stories260K/stories260K.bin`, '--tokenizer', join(work, 'empty.txt')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('empty.txt');
  });
});
