// Slow: every CUDA file emitted for the examples, compiled by nvcc for sm_80 and sm_90a
// (+ compute_90 PTX) with warnings as errors, and ptxas's report checked: no spills, no stack
// frame, registers and shared memory within what a block of the kernel's size may use.
// Skipped where nvcc is not on PATH. Fatbins are cached by content hash outside the repo
// (src/backends/cuda/nvcc.ts), so a repeated run only reads the cache.
import { mkdtempSync, rmSync } from 'node:fs';
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

const EXAMPLES: readonly (readonly [spec: string, precision?: 'f16'])[] = [
  ['examples/stories260k.qal'],
  ['examples/stories260k.qal', 'f16'],
  ['examples/llama2-7b-int4-g32.qal'],
];

describe.skipIf(!nvcc)('nvcc compiles every emitted kernel', () => {
  for (const [spec, precision] of EXAMPLES) {
    it(`${spec} ${precision ?? 'bf16'}: no warnings, no spills`, async () => {
      const plan = frontEnd(spec).plan!;
      const kernels = emitCuda(lowerPlan(plan, 'cuda', precision ? { precision } : {}));
      const started = performance.now();
      const result = await buildKernels(kernels, join(outDir, `${plan.spec}_${precision ?? 'bf16'}`));
      console.log(`${spec} ${precision ?? 'bf16'}: ${result.message} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      expect(result.builds.length).toBe(kernels.length * 2);
      for (const { fileName, build } of result.builds) {
        expect(build.warnings, `${fileName} ${build.arch}`).toEqual([]);
        const symbols = kernels.find((k) => k.fileName === fileName)!.kernelSymbols;
        expect(build.functions.map((f) => f.name).sort(), `${fileName} ${build.arch}`).toEqual([...symbols].sort());
        for (const f of build.functions) {
          const where = `${f.name} on ${f.arch}`;
          expect(f.spillStoreBytes + f.spillLoadBytes, `${where} spills`).toBe(0);
          expect(f.stackBytes, `${where} has a stack frame`).toBe(0);
          expect(f.registers, where).toBeLessThanOrEqual(128);
          expect(f.sharedBytes, where).toBeLessThanOrEqual(48 * 1024);
        }
      }
    }, 900_000);
  }
});
if (!nvcc) console.log('nvcc is not on PATH: the CUDA compile test is skipped (sources are still emitted and golden-tested)');
