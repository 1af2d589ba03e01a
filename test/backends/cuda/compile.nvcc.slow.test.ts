// Slow: every CUDA file emitted for every example spec (examples/*.qal but broken.qal, each in
// the activation precision its `target cuda` block names), compiled by nvcc for sm_80 and
// sm_90a (+ compute_90 PTX) with warnings as errors, and ptxas's report checked: no spills, no
// stack frame, registers and shared memory within what a block of the kernel's size may use
// (registers: 64K a block, 255 a thread).
// Skipped where nvcc is not on PATH. Fatbins are cached by content hash outside the repo
// (src/backends/cuda/nvcc.ts), so a repeated run only reads the cache.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { emitCuda } from '../../../src/backends/cuda/emit.ts';
import { buildKernels, findNvcc } from '../../../src/backends/cuda/nvcc.ts';
import { frontEnd } from '../../../src/compile.ts';
import { lowerPlan } from '../../../src/ir/lower.ts';

const nvcc = await findNvcc();
const outDir = mkdtempSync(join(tmpdir(), 'qalc-cuda-test-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

/** Every example but the one written to fail, in its own precision; a new example is compiled without editing this. */
const SPECS: readonly string[] = readdirSync('examples')
  .filter((name) => name.endsWith('.qal') && name !== 'broken.qal')
  .sort()
  .map((name) => `examples/${name}`);
/** Plus stories260k in f16: its ragged shapes (K = 172, group 43) through the f16 conversions. */
const EXAMPLES: readonly (readonly [spec: string, precision?: 'f16'])[] = [
  ...SPECS.map((spec) => [spec] as const),
  ['examples/stories260k.qal', 'f16'],
];

it('finds the example specs', () => {
  expect(SPECS.length).toBeGreaterThanOrEqual(4);
});

describe.skipIf(!nvcc)('nvcc compiles every emitted kernel', () => {
  for (const [spec, precision] of EXAMPLES) {
    const label = `${spec}${precision ? ` as ${precision}` : ''}`;
    it(`${label}: no warnings, no spills, no stack`, async () => {
      const plan = frontEnd(spec).plan!;
      expect(plan, `${spec} has a plan`).toBeDefined();
      const kernels = emitCuda(lowerPlan(plan, 'cuda', precision ? { precision } : {}));
      const started = performance.now();
      const result = await buildKernels(kernels, join(outDir, `${plan.spec}${precision ? `_${precision}` : ''}`));
      console.log(`${label}: ${result.message} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      expect(result.builds.length).toBe(kernels.length * 2);
      for (const { fileName, build } of result.builds) {
        expect(build.warnings, `${fileName} ${build.arch}`).toEqual([]);
        const emitted = kernels.find((k) => k.fileName === fileName)!;
        const symbols = emitted.kernelSymbols;
        // Threads a block of each symbol: a block's registers must fit the 64K register file.
        const threadsOf = new Map(emitted.kernel.cuda.launches.flatMap((l) => [
          [l.symbol, l.threads[0] * l.threads[1] * l.threads[2]] as const,
          ...(l.prologue ? [[l.prologue.symbol, l.prologue.threads[0] * l.prologue.threads[1] * l.prologue.threads[2]] as const] : []),
        ]));
        expect(build.functions.map((f) => f.name).sort(), `${fileName} ${build.arch}`).toEqual([...symbols].sort());
        for (const f of build.functions) {
          const where = `${f.name} on ${f.arch}`;
          expect(f.spillStoreBytes + f.spillLoadBytes, `${where} spills`).toBe(0);
          expect(f.stackBytes, `${where} has a stack frame`).toBe(0);
          expect(f.registers, where).toBeLessThanOrEqual(Math.min(255, Math.floor(65536 / threadsOf.get(f.name)!)));
          expect(f.sharedBytes, where).toBeLessThanOrEqual(48 * 1024);
        }
      }
    }, 900_000);
  }
});
if (!nvcc) console.log('nvcc is not on PATH: the CUDA compile test is skipped (sources are still emitted and golden-tested)');
