// `qalc compile` with nvcc: what it says while the compiler runs, what the cache saves, and
// --no-build. The compiler here is a stand-in script (QALC_NVCC) that writes a placeholder
// fatbin at once, so the test holds on a cold cache and on a machine without nvcc; the real
// nvcc's output is tested in test/backends/cuda/compile.nvcc.slow.test.ts.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const work = mkdtempSync(join(tmpdir(), 'qalc-compile-build-'));
const fakeNvcc = join(work, 'nvcc');
writeFileSync(fakeNvcc, `#!/bin/sh
if [ "$1" = --version ]; then echo 'Build stand-in_1'; exit 0; fi
while [ $# -gt 0 ]; do if [ "$1" = -o ]; then printf 'fatbin' > "$2"; fi; shift; done
`);
chmodSync(fakeNvcc, 0o755);
const env = { ...process.env, QALC_NVCC: fakeNvcc, QALC_NVCC_CACHE: join(work, 'cache') };

function compile(out: string, ...args: string[]) {
  return spawnSync(process.execPath, ['src/cli/qalc.mjs', 'compile', 'examples/stories260k.qal', '--out', join(work, out), ...args], { encoding: 'utf8', env });
}

it('says how far nvcc has got, and how much came from the cache', () => {
  const cold = compile('cold');
  expect(cold.status, cold.stderr).toBe(0);
  // The linear kernels' in cuda/, the model ops' in cuda/ops/.
  const opFatbins = readdirSync(join(work, 'cold', 'cuda', 'ops')).filter((f) => f.endsWith('.fatbin')).length;
  const fatbins = readdirSync(join(work, 'cold', 'cuda')).filter((f) => f.endsWith('.fatbin')).length + opFatbins;
  expect(opFatbins).toBe(26); // 13 model ops (attention, the GEMM path's unpool and generation's decode attention too), for sm_80 and sm_90a
  expect(fatbins).toBeGreaterThan(30);
  expect(cold.stderr).toContain(`nvcc: building ${fatbins} fatbins (each kernel for each architecture),`);
  expect(cold.stderr).toContain('--no-build skips this');
  const lines = cold.stderr.split('\n').filter((l) => /^nvcc: \d+\/\d+ fatbins done/.test(l));
  expect(lines.length).toBeGreaterThanOrEqual(2);
  expect(lines.length).toBeLessThanOrEqual(11); // not a line per fatbin in a log
  expect(lines.at(-1)).toMatch(new RegExp(`^nvcc: ${fatbins}/${fatbins} fatbins done \\(0 from the cache\\), \\d+ s$`));

  const warm = compile('warm');
  expect(warm.status, warm.stderr).toBe(0);
  expect(warm.stderr).toMatch(new RegExp(`nvcc: ${fatbins}/${fatbins} fatbins done \\(${fatbins} from the cache\\)`));
});

it('--no-build writes the sources and runs no compiler', () => {
  const r = compile('sources', '--no-build');
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).not.toContain('nvcc');
  expect(readdirSync(join(work, 'sources', 'cuda')).some((f) => f.endsWith('.cu'))).toBe(true);
  expect(readdirSync(join(work, 'sources', 'cuda')).some((f) => f.endsWith('.fatbin'))).toBe(false);
  expect(existsSync(join(work, 'sources', 'plan.json'))).toBe(true);
});

it('says when the generated trainer could not find qalc from where it was written', () => {
  // work is outside any project with qalc installed; generated/ in this repository is inside one.
  const outside = compile('outside', '--no-build');
  expect(outside.status, outside.stderr).toBe(0);
  expect(outside.stderr).toContain(`note: ${join(work, 'outside', 'train.mts')} imports qalc by its package name, which does not resolve from ${join(work, 'outside')}: run it from a folder of a project that has qalc installed`);
  mkdirSync('.scratch', { recursive: true });
  const insideOut = mkdtempSync(join('.scratch', 'compile-build-')); // git-ignored
  try {
    const inside = spawnSync(process.execPath, ['src/cli/qalc.mjs', 'compile', 'examples/stories260k.qal', '--out', insideOut, '--no-build'], { encoding: 'utf8' });
    expect(inside.status, inside.stderr).toBe(0);
    expect(inside.stderr).not.toContain('note:');
  } finally {
    rmSync(insideOut, { recursive: true, force: true });
  }
});

it('documents --no-build in its help', () => {
  const r = spawnSync(process.execPath, ['src/cli/qalc.mjs', 'compile', '--help'], { encoding: 'utf8' });
  expect(r.stdout).toMatch(/--no-build\s+write the CUDA sources without running nvcc/);
});
