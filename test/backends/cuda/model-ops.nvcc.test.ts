// The CUDA model ops compile: every op kernel emitted for the stories260K example (bf16, and its
// convert in fp16) and for a written architecture with ragged shapes (dim 72, head size 12,
// hidden 200, vocab 999, adapter dropout: its dropout op too), built by nvcc with the flags `qalc compile` uses (warnings are errors)
// for sm_80 and sm_90a, and ptxas's report checked: exactly the entry points' symbols, no spills,
// no stack frame, registers and static shared memory within what a block of the entry point's
// size may use. Skipped where nvcc is not on PATH; fatbins are cached by content hash
// (src/backends/cuda/nvcc.ts), so a repeated run only reads the cache.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFatbin, buildKernels, findNvcc } from '../../../src/backends/cuda/nvcc.ts';
import { modelOpKernels } from '../../../src/backends/cuda/model-ops.ts';
import { emitModelOps } from '../../../src/backends/emit-kernels.ts';
import { frontEnd } from '../../../src/compile.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { compileSpec } from '../../support/inline-spec.ts';

const nvcc = await findNvcc();
const outDir = mkdtempSync(join(tmpdir(), 'qalc-model-ops-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

const RAGGED = 'model { dim = 72  hidden_dim = 200  layers = 2  heads = 6  kv_heads = 2  vocab = 999  context = 64 }\nquant { bits = 4  group = 8 }\nadapter { rank = 2  alpha = 4  dropout = 0.05 }';
const CASES: readonly (readonly [label: string, plan: () => Plan, precision: 'bf16' | 'f16'])[] = [
  ['stories260k', () => frontEnd('examples/stories260k.qal').plan!, 'bf16'],
  ['stories260k as fp16', () => frontEnd('examples/stories260k.qal').plan!, 'f16'],
  ['a ragged written architecture', () => compileSpec(RAGGED).plan!, 'bf16'],
];

describe.skipIf(!nvcc)('nvcc compiles every model-op kernel', () => {
  for (const [label, planOf, precision] of CASES) {
    it(`${label}: no warnings, no spills, no stack`, async () => {
      const plan = planOf();
      const all = emitModelOps(modelOpKernels(plan, { precision }), { spec: plan.spec, specFile: plan.specFile, precision });
      // In fp16 only the conversion differs.
      const emitted = precision === 'f16' ? all.filter((k) => k.kernel.op === 'convert') : all;
      const result = await buildKernels(emitted, join(outDir, `${plan.spec}_${precision}`), { jobs: 2 });
      console.log(`${label}: ${result.message}`);
      expect(result.builds.length).toBe(emitted.length * 2);
      for (const { fileName, build } of result.builds) {
        expect(build.warnings, `${fileName} ${build.arch}`).toEqual([]);
        const kernel = emitted.find((k) => k.fileName === fileName)!.kernel;
        const threadsOf = new Map(kernel.entryPoints.map((e) => [e.symbol, e.block[0] * e.block[1] * e.block[2]]));
        expect(build.functions.map((f) => f.name).sort(), `${fileName} ${build.arch}`).toEqual([...threadsOf.keys()].sort());
        for (const f of build.functions) {
          const where = `${f.name} on ${f.arch}`;
          expect(f.spillStoreBytes + f.spillLoadBytes, `${where} spills`).toBe(0);
          expect(f.stackBytes, `${where} has a stack frame`).toBe(0);
          expect(f.registers, where).toBeLessThanOrEqual(Math.min(255, Math.floor(65536 / threadsOf.get(f.name)!)));
          expect(f.sharedBytes + kernel.entryPoints.find((e) => e.symbol === f.name)!.sharedBytes, where).toBeLessThanOrEqual(48 * 1024);
        }
      }
    }, 600_000);
  }
});
if (!nvcc) console.log('nvcc is not on PATH: the CUDA model-op compile test is skipped (sources are still emitted and golden-tested)');

describe.skipIf(!nvcc)('buildFatbin', () => {
  it('builds a model op by its file name, folder included (ops/…, as the runtime asks when a fatbin is missing)', async () => {
    const plan = frontEnd('examples/stories260k.qal').plan!;
    const [op] = emitModelOps(modelOpKernels(plan, { precision: 'bf16' }), { spec: plan.spec, specFile: plan.specFile, precision: 'bf16' }).filter((k) => k.kernel.op === 'swiglu');
    expect(op!.fileName).toMatch(/^ops\//);
    const build = await buildFatbin(nvcc!, op!.fileName, op!.source, 'sm_90a', mkdtempSync(join(outDir, 'cache-')));
    expect(build.cached).toBe(false);
    expect(build.fatbin.length).toBeGreaterThan(0);
  }, 120_000);
});
