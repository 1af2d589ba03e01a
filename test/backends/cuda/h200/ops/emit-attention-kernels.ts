// Renders the attention kernels check_attention.py runs and builds their sm_90a fatbins here
// (the same nvcc flags and cache as `qalc compile`), with attention-kernels.json describing
// them (the ModelOpKernel the runtime launches by, plus the file names): each shape's kernel for
// bf16 activations (bf16 q, k, v, dOut, out) and for float32 ones. With --variants, also the
// bf16 tile variants of VARIANTS (kernel names suffixed by the variant's) for the head sizes of
// 64 and over, plus one padded head size, to check and time side by side with the defaults.
//
//   npx tsx test/backends/cuda/h200/ops/emit-attention-kernels.ts OUT_DIR [--variants]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attentionKernel, renderAttentionKernel, type AttentionTuning } from '../../../../../src/backends/cuda/model-ops/attention.ts';
import { buildKernels } from '../../../../../src/backends/cuda/nvcc.ts';

/** [dim, heads, kvHeads]: stories260K (head size 8, GQA 2), GQA ratios 1 and 4 at head sizes 8, 32, 64, 128, and LLaMA-7B. */
export const CHECKED_SHAPES: readonly (readonly [number, number, number])[] = [
  [64, 8, 4], [64, 8, 8], [64, 8, 2], [128, 4, 1], [256, 4, 4], [512, 8, 2], [512, 4, 4], [1024, 8, 2], [4096, 32, 32],
];

/** Tile variants of the bf16 kernels timed against the defaults (attentionTuning; LOG.md's a3 numbers them). */
export const VARIANTS: readonly { readonly name: string; readonly tuning: AttentionTuning }[] = [
  // a3: the defaults before a3e's dkdv and a3f's forward became them (8-warp forward blocks, 32 queries a dkdv step).
  { name: 'a3', tuning: { forwardWarps: 8, forwardBlockKey: 64, dqWarps: 4, dqBlockKey: 32, dkdvWarps: 4, dkdvBlockQuery: 32 } },
  // a3b: 8-warp dq blocks (128 queries share each K, V tile), 64 keys a step.
  { name: 'a3b', tuning: { forwardWarps: 8, forwardBlockKey: 64, dqWarps: 8, dqBlockKey: 64, dkdvWarps: 4, dkdvBlockQuery: 32 } },
  // a3e: 128 keys a forward step and 64 queries a dkdv step (half the steps, barriers and fetches; 255 and 250 registers, no spills).
  { name: 'a3e', tuning: { forwardWarps: 8, forwardBlockKey: 128, dqWarps: 4, dqBlockKey: 32, dkdvWarps: 4, dkdvBlockQuery: 64 } },
  // a3f: 4-warp forward blocks, two a multiprocessor now that bf16 stages fit twice (a1's w4 with float32 staging was slower).
  { name: 'a3f', tuning: { forwardWarps: 4, forwardBlockKey: 64, dqWarps: 4, dqBlockKey: 32, dkdvWarps: 4, dkdvBlockQuery: 32 } },
];

const outDir = process.argv[2];
if (!outDir) throw new Error('usage: emit-attention-kernels.ts OUT_DIR [--variants]');
const shapes = CHECKED_SHAPES.map(([dim, heads, kvHeads]) => ({ dim, heads, kvHeads }));
const kernels = ['bf16', 'f32'].flatMap((activation) => shapes.map((shape) => attentionKernel({ ...shape, activation })));
if (process.argv.includes('--variants')) {
  for (const shape of shapes.filter((s) => s.dim / s.heads >= 64 || (s.dim === 64 && s.kvHeads === 2))) {
    for (const variant of VARIANTS) kernels.push(attentionKernel({ ...shape, activation: 'bf16' }, variant));
  }
}
const sources = kernels.map((k) => renderAttentionKernel(k, { spec: 'check_attention', specFile: 'test/backends/cuda/h200/ops/emit-attention-kernels.ts' }));
const result = await buildKernels(sources, outDir, { arches: ['sm_90a'], jobs: 2 });
console.log(result.message);
for (const { fileName, build } of result.builds) {
  for (const f of build.functions) console.log(`${fileName} ${f.name}: ${f.registers} registers, ${f.spillStoreBytes} spill bytes`);
}
writeFileSync(join(outDir, 'attention-kernels.json'), JSON.stringify(kernels.map((k) => ({ ...k, file: `${k.kernel}.cu`, fatbin: `${k.kernel}.sm_90a.fatbin` })), null, 1));
