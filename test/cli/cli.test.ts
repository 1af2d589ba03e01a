// The qalc command as a user runs it: a real process, its exit status, stdout and stderr.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';

function qalc(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['src/cli/qalc.mjs', ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('qalc', () => {
  it('check is silent and exits 0 on a clean spec', () => {
    expect(qalc(['check', 'examples/stories260k.qal', 'examples/llama-13b-mixed.qal'])).toEqual({ status: 0, stdout: '', stderr: '' });
  });

  it('check prints compiler-style errors and exits 1', () => {
    const r = qalc(['check', 'examples/broken.qal']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('examples/broken.qal:6:16: error: hidden_dim = 11000 disagrees with preset llama2_7b');
    expect(r.stderr).toContain(" 20 |   projections = [q, k, v, gaet]\n    |                           ^^^^\nhint: did you mean 'gate'?");
    expect(r.stderr).toMatch(/\d+ errors, 1 warning\n$/);
    expect(r.stderr).not.toContain('\x1b['); // no colour when not on a terminal
    expect(r.stderr).not.toMatch(/\n\s+at /); // never a stack trace for a user's mistake
  });

  it('colours only when asked to, or on a terminal', () => {
    expect(qalc(['check', 'examples/broken.qal'], { FORCE_COLOR: '1' }).stderr).toContain('\x1b[1;31merror');
  });

  it('has --help for every verb', () => {
    for (const verb of ['check', 'inspect', 'fmt', 'compile']) {
      const r = qalc([verb, '--help']);
      expect(r.status, verb).toBe(0);
      expect(r.stdout).toContain(`usage: qalc ${verb}`);
    }
    expect(qalc(['--help']).stdout).toContain('Exit status: 0 clean, 1 errors in the spec or the command line, 2 a bug in qalc.');
  });

  it('exits 1 with usage help on a bad command line', () => {
    expect(qalc(['chekc', 'x.qal'])).toMatchObject({ status: 1, stderr: expect.stringContaining("unknown verb 'chekc'") });
    expect(qalc(['check', '--frobnicate', 'x.qal'])).toMatchObject({ status: 1, stderr: expect.stringContaining("Unknown option '--frobnicate'") });
    expect(qalc(['check'])).toMatchObject({ status: 1, stderr: expect.stringContaining('check needs at least one spec file') });
    expect(qalc(['check', 'no/such.qal'])).toMatchObject({ status: 1, stderr: expect.stringContaining("no/such.qal:1:1: error: cannot read spec 'no/such.qal': no such file") });
  });

  it('exits 2, saying it is a bug, when qalc itself fails', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const crash = { name: 'crash', summary: '', usage: '', options: {}, optionHelp: {}, run: () => { throw new TypeError('x is undefined'); } };
    expect(await main(['crash'], [crash])).toBe(2);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toContain('internal error — this is a bug in qalc');
    stderr.mockRestore();
  });

  it('inspect shows the plan with sizes and totals, or as JSON', () => {
    const table = qalc(['inspect', 'examples/llama-7b-int4-g32.qal']);
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/0\.\.31\s+q\s+4096×4096\s+4\s+32\s+qalora r64\s+256\.00\s+32\.00\s+8\.00\s+33\.00\s+1024\.00/);
    expect(table.stdout).toContain('whole model');
    const plan = JSON.parse(qalc(['inspect', 'examples/llama-7b-int4-g32.qal', '--json']).stdout) as { layers: unknown[] };
    expect(plan.layers).toHaveLength(224);
    expect(qalc(['inspect', 'examples/stories260k.qal', '--all']).stdout.split('\n').filter((l) => /^\d+\s/.test(l))).toHaveLength(35);
  });

  it('compile writes plan.json, byte-identical on every run', () => {
    const out = mkdtempSync(join(tmpdir(), 'qalc-'));
    // --no-build: nvcc on a cold cache takes minutes for this spec (test/cli/compile-build.test.ts tests the build).
    expect(qalc(['compile', 'examples/llama-13b-mixed.qal', '--out', join(out, 'a'), '--no-build']).status).toBe(0);
    expect(qalc(['compile', 'examples/llama-13b-mixed.qal', '--out', join(out, 'b'), '--no-build']).status).toBe(0);
    const a = readFileSync(join(out, 'a', 'plan.json'), 'utf8');
    expect(readFileSync(join(out, 'b', 'plan.json'), 'utf8')).toBe(a);
    expect(JSON.parse(a)).toMatchObject({ spec: 'llama_13b_mixed', model: { preset: 'llama_13b' } });
  });

  it('fmt checks, prints and rewrites', () => {
    expect(qalc(['fmt', '--check', 'examples/stories260k.qal', 'examples/llama2-7b-int4-g32.qal'])).toMatchObject({ status: 0, stdout: '' });
    const dir = mkdtempSync(join(tmpdir(), 'qalc-fmt-'));
    const messy = join(dir, 'messy.qal');
    writeFileSync(messy, 'spec m\nmodel{preset=llama_7b}\nquant{bits=4 group=32}\n');
    expect(qalc(['fmt', '--check', messy])).toMatchObject({ status: 1, stdout: `${messy}\n` });
    expect(qalc(['fmt', messy]).stdout).toBe('spec m\n\nmodel {\n  preset = llama_7b\n}\n\nquant {\n  bits = 4\n  group = 32\n}\n');
    expect(qalc(['fmt', '--write', messy]).status).toBe(0);
    expect(qalc(['fmt', '--check', messy]).status).toBe(0);
    // A file that does not parse is never rewritten.
    copyFileSync('examples/broken.qal', join(dir, 'broken.qal'));
    expect(qalc(['fmt', '--write', join(dir, 'broken.qal')]).status).toBe(1);
    expect(readFileSync(join(dir, 'broken.qal'), 'utf8')).toBe(readFileSync('examples/broken.qal', 'utf8'));
  });
});

describe('qalc inspect, the later stages', () => {
  it('lists the kernels, prints one, and shows the IR after a pass', () => {
    const list = qalc(['inspect', 'examples/stories260k.qal', '--stage', 'wgsl']);
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/^forward_k172_n64_b4_g43_qalora_r4_mean_f32\s+forward\s+5 layers {2}examples\/stories260k\.qal:11/m);
    const kernel = qalc(['inspect', 'examples/stories260k.qal', '--kernel', 'forward_k172_n64_b4_g43_qalora_r4_mean_bf16']);
    expect(kernel.stdout).toContain('extern "C"');
    expect(kernel.stdout).toBe(readFileSync('generated/stories260k/cuda/forward_k172_n64_b4_g43_qalora_r4_mean_bf16.cu', 'utf8'));
    const ir = qalc(['inspect', 'examples/stories260k.qal', '--stage', 'ir', '--target', 'wgsl', '--pass', 'fuseAdapterEpilogue']);
    expect(ir.stdout.split('\n')[0]).toBe('// after fuseAdapterEpilogue');
    expect(JSON.parse(ir.stdout.slice(ir.stdout.indexOf('\n') + 1))).toMatchObject({ target: 'wgsl', spec: 'stories260k' });
    expect(qalc(['inspect', 'examples/stories260k.qal', '--kernel', 'forwad_k172_n64_b4_g43_qalora_r4_mean_bf16'])).toMatchObject({
      status: 1, stderr: expect.stringContaining("did you mean 'forward_k172_n64_b4_g43_qalora_r4_mean_bf16'?"),
    });
  });
});
