// Slow: the attention kernels of several shapes (head sizes 8, 32, 64, 128; GQA ratios 1, 2, 4, 8)
// compiled by nvcc for sm_80 and sm_90a (+ compute_90 PTX) with the flags `qalc compile` uses
// (warnings are errors, -Xptxas -v) and ptxas's report checked: every entry point present, no
// spills, no stack frame, registers within a 128-thread block's share, shared memory within
// what the description says the launch passes (nothing static besides). Skipped without nvcc;
// fatbins are cached by content hash (src/backends/cuda/nvcc.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attentionKernel, renderAttentionKernel } from '../../../../src/backends/cuda/model-ops/attention.ts';
import { buildKernels, findNvcc } from '../../../../src/backends/cuda/nvcc.ts';

const nvcc = await findNvcc();
const outDir = mkdtempSync(join(tmpdir(), 'qalc-attention-test-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

const SHAPES = [
  { dim: 64, heads: 8, kvHeads: 4 }, // stories260K: head size 8, GQA 2
  { dim: 128, heads: 4, kvHeads: 1 },
  { dim: 512, heads: 8, kvHeads: 2 },
  { dim: 4096, heads: 32, kvHeads: 32 }, // LLaMA-7B
  { dim: 4096, heads: 32, kvHeads: 4 },
];

describe.skipIf(!nvcc)('nvcc compiles the attention kernels', () => {
  it('for sm_80 and sm_90a: no warnings, no spills, no stack', async () => {
    // Each shape with float32 rows and with bf16 rows (bf16 activations).
    const kernels = SHAPES.flatMap((shape) => [attentionKernel(shape), attentionKernel({ ...shape, activation: 'bf16' })]);
    const sources = kernels.map((k) => renderAttentionKernel(k, { spec: 'attention test', specFile: 'test.qal' }));
    const result = await buildKernels(sources, outDir, { jobs: 2 });
    expect(result.builds.length).toBe(kernels.length * 2);
    for (const { fileName, build } of result.builds) {
      const kernel = kernels.find((k) => `${k.kernel}.cu` === fileName)!;
      expect(build.warnings, `${fileName} ${build.arch}`).toEqual([]);
      expect(build.functions.map((f) => f.name).sort()).toEqual(kernel.entryPoints.map((e) => e.symbol).sort());
      for (const f of build.functions) {
        const entry = kernel.entryPoints.find((e) => e.symbol === f.name)!;
        const where = `${fileName} ${f.name} on ${f.arch}`;
        expect(f.spillStoreBytes + f.spillLoadBytes, `${where} spills`).toBe(0);
        expect(f.stackBytes, `${where} has a stack frame`).toBe(0);
        expect(f.registers, where).toBeLessThanOrEqual(Math.min(255, Math.floor(65536 / (entry.block[0] * entry.block[1] * entry.block[2]))));
        expect(f.sharedBytes, `${where}: static shared memory`).toBe(0);
        expect(entry.sharedBytes, `${where}: dynamic shared memory an sm_80 block may have`).toBeLessThanOrEqual(163 * 1024);
      }
    }
  }, 900_000);
});
if (!nvcc) console.log('nvcc is not on PATH: the attention compile test is skipped');
