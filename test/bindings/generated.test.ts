// generated/ holds what `qalc compile` writes for every example; it is committed, so a change to
// the compiler shows up as a reviewed diff. These tests fail when it is stale, when the output
// is not deterministic, or when the generated TypeScript does not type-check strictly.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileOutputs, frontEnd } from '../../src/compile.ts';
import { expectGolden } from '../support/golden.ts';

const examples = readdirSync('examples').filter((f) => f.endsWith('.qal') && f !== 'broken.qal').map((f) => `examples/${f}`);

describe('generated/', () => {
  it.each(examples)('is up to date for %s, and the same on every run', async (spec) => {
    const { plan } = frontEnd(spec);
    const out = join('generated', plan!.spec);
    const files = await compileOutputs(plan!, spec, out);
    const again = await compileOutputs(frontEnd(spec).plan!, spec, out);
    expect(again).toEqual(files);
    for (const file of files) expectGolden(join(out, file.path), file.text);
  });

  it('type-checks with tsc --strict, the whole project included', () => {
    const r = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.json'], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);

  it('runs: the generated trainer of stories260K trains', () => {
    const out = mkdtempSync(join(tmpdir(), 'qalc-generated-'));
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'generated/stories260k/train.mts', '--steps', '2', '--out', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/stories260k: held-out loss \d+\.\d+ → \d+\.\d+ after 2 steps/);
    expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(true);
    expect(readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
  }, 120_000);

  it('refuses an unknown --backend with the choices', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'generated/stories260k/train.mts', '--backend', 'tpu'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('unknown backend \'tpu\': expected cpu, webgpu, cuda\nusage: train.mts [--backend cpu|webgpu|cuda] [--kernels DIR] [--steps N] [--out DIR] [--resume]\n');
  });

  it('says what is missing instead of failing with a stack trace', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'generated/llama_7b_int4_g32/train.mts', '--steps', '1'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('llama_7b_int4_g32: spec llama_7b_int4_g32: training needs the weights: set `checkpoint = "…"` in the model block, or train on seeded random weights with `qalc train SPEC --random-weights [--seed N]` (to measure the shape: the losses mean nothing about a real model)\n');
  });
});
