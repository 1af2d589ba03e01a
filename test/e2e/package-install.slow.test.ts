// qalc as a user gets it: `npm pack`, the tarball installed into a fresh project of the default
// "type": "commonjs" outside the repository, its folder made read-only, then check, compile,
// train and the generated trainer run from that project. Slow (the install builds the native
// addon: about 15 s on 2 cores). Packages come from npm's cache where it has them (`npm ci`
// filled it), the registry only for what is missing; `webgpu` (an optional dependency, 132 MB)
// is left out, which is also how the test sees that everything else runs without it.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stories260kSpec } from '../support/inline-spec.ts';

const work = mkdtempSync(join(tmpdir(), 'qalc-package-'));
const project = join(work, 'project');
const installed = join(project, 'node_modules', 'qalc');
afterAll(() => {
  spawnSync('chmod', ['-R', 'u+w', work]);
  rmSync(work, { recursive: true, force: true });
});

/**
 * The environment without what `npm test` sets about qalc's own package and run: a child npm
 * given npm_config_local_prefix would install into this repository. Settings (npm_config_cache,
 * the registry) are kept.
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const own = /^npm_(package_|lifecycle_|command$|execpath$|node_execpath$|config_local_prefix$|config_call$)/i;
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !own.test(name)));
  return { ...env, NO_COLOR: '1', ...extra };
}

function run(command: string, args: string[], cwd: string, extra: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, encoding: 'utf8', env: userEnv(extra), timeout: 240_000 });
}

const output = (r: SpawnSyncReturns<string>) => `exit ${r.status}\n${r.stdout}\n${r.stderr}`;

/** Every file under `dir` with its size and mtime: what an install folder holds, to see that nothing writes into it. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    const s = statSync(path);
    files[relative(dir, path)] = entry.isDirectory() ? 'dir' : `${s.size}:${s.mtimeMs}`;
  }
  return files;
}

let tarball = '';
let before: Record<string, string> = {};

beforeAll(() => {
  const packed = run('npm', ['pack', '--pack-destination', work, '--json'], process.cwd());
  expect(packed.status, output(packed)).toBe(0);
  tarball = join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);

  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), '{ "name": "user-project", "version": "1.0.0", "private": true }\n');
  const install = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--omit=optional', tarball], project);
  expect(install.status, output(install)).toBe(0);
  writeFileSync(join(project, 'tiny.qal'), stories260kSpec('tiny', 'seq_len = 16\n  batch = 2'));
  // Read-only for everyone but root; for root (CI) the snapshot shows that nothing was written.
  expect(spawnSync('chmod', ['-R', 'a-w', installed]).status).toBe(0);
  before = snapshot(installed);
}, 300_000);

describe('the npm package, installed read-only into a commonjs project', () => {
  it('ships the code, the templates, the bundled command and a LICENSE; not generated/, test/ or .ci/', () => {
    const listed = run('tar', ['tzf', tarball], work).stdout.split('\n').filter(Boolean);
    expect(listed).toContain('package/LICENSE');
    expect(listed).toContain('package/dist/cli/main.js');
    expect(listed).toContain('package/src/cli/qalc.mjs');
    expect(listed).toContain('package/binding.gyp');
    expect(listed.some((f) => f.startsWith('package/templates/cuda/'))).toBe(true);
    expect(listed.filter((f) => /^package\/(generated|test|examples|\.ci|build|node_modules)\//.test(f))).toEqual([]);
    expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toContain('Copyright (c) 2026 qalc contributors');
  });

  it('checks, compiles, trains, and runs the generated trainer, writing nothing into its own folder', () => {
    const qalc = join(project, 'node_modules', '.bin', 'qalc');
    const check = run(qalc, ['check', 'tiny.qal'], project);
    expect(check.status, output(check)).toBe(0);

    const compiled = run(qalc, ['compile', 'tiny.qal', '--no-build'], project);
    expect(compiled.status, output(compiled)).toBe(0);
    const trainer = readFileSync(join(project, 'generated', 'tiny', 'train.mts'), 'utf8');
    expect(trainer).toContain("import { runTrainer } from 'qalc/bindings';");
    expect(trainer).not.toContain('node_modules');

    const trained = run(qalc, ['train', 'tiny.qal', '--steps', '2', '--out', 'run-cli'], project);
    expect(trained.status, output(trained)).toBe(0);
    expect(trained.stderr).toMatch(/tiny: 2 steps in .*held-out loss \d+\.\d+ → \d+\.\d+/);

    const generated = run(join(project, 'node_modules', '.bin', 'tsx'), ['generated/tiny/train.mts', '--steps', '2', '--out', 'run-generated'], project);
    expect(generated.status, output(generated)).toBe(0);
    expect(generated.stderr).toMatch(/tiny: held-out loss \d+\.\d+ → \d+\.\d+ after 2 steps/);
    const losses = (dir: string) => readFileSync(join(project, dir, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
    expect(losses('run-generated')).toEqual(losses('run-cli'));

    expect(snapshot(installed)).toEqual(before);
  }, 240_000);

  it('says what to install for --backend webgpu when the optional webgpu package is left out', () => {
    const r = run(join(project, 'node_modules', '.bin', 'qalc'), ['train', 'tiny.qal', '--steps', '1', '--backend', 'webgpu', '--out', 'run-webgpu'], project);
    expect(r.status, output(r)).toBe(1);
    expect(r.stderr).toContain('qalc train: the webgpu backend cannot run here: WebGPU: the optional package `webgpu` (Dawn for Node) is not installed: run `npm install webgpu`');
  });
});

describe('the package install script', () => {
  it('warns, and lets the install go on, when the native addon does not build', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    const dir = join(work, 'native');
    mkdirSync(dir);
    cpSync('binding.gyp', join(dir, 'binding.gyp'));
    cpSync('src', join(dir, 'src'), { recursive: true, filter: (path) => statSync(path).isDirectory() || /\.(cc|h)$/.test(path) });
    cpSync('node_modules/node-addon-api', join(dir, 'node_modules', 'node-addon-api'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'native-only', version: '1.0.0', scripts: { install: pkg.scripts['install'] } }));
    const r = run('npm', ['run', 'install'], dir, { CXX: 'false', CC: 'false' });
    expect(r.status, output(r)).toBe(0);
    expect(r.stderr).toContain('qalc: warning: the native CPU backend (build/Release/qalc_cpu.node) did not build');
    expect(r.stderr).toContain('qalc runs on its TypeScript ops instead');
  }, 120_000);
});
