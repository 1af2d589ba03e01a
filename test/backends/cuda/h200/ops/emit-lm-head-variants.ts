// The lm_head GEMM's tunings side by side, for check_ops.py --variants to check and time on the
// device: for each spec, every (stages, minBlocks) of src/backends/cuda/model-ops/lm-head.ts
// emitted by the real emitter under the same kernel name and symbols, one folder a tuning,
// each with its sm_90a fatbin. The chosen one is LM_HEAD_TUNING.
//
//   npx tsx test/backends/cuda/h200/ops/emit-lm-head-variants.ts OUT_DIR SPEC...
import { join } from 'node:path';
import { buildKernels } from '../../../../../src/backends/cuda/nvcc.ts';
import { lmHeadKernel, type LmHeadTuning } from '../../../../../src/backends/cuda/model-ops/lm-head.ts';
import { modelShapes } from '../../../../../src/backends/cuda/model-ops/shapes.ts';
import { emitModelOps } from '../../../../../src/backends/emit-kernels.ts';
import { frontEnd } from '../../../../../src/compile.ts';

const TUNINGS: readonly LmHeadTuning[] = [{ stages: 1, minBlocks: 1 }, { stages: 1, minBlocks: 2 }, { stages: 2, minBlocks: 1 }, { stages: 2, minBlocks: 2 }];

const [outDir, ...specs] = process.argv.slice(2);
if (!outDir || specs.length === 0) throw new Error('usage: emit-lm-head-variants.ts OUT_DIR SPEC...');
for (const spec of specs) {
  const plan = frontEnd(spec).plan!;
  for (const tuning of TUNINGS) {
    const label = `stages${tuning.stages}_blocks${tuning.minBlocks}`;
    const [emitted] = emitModelOps([lmHeadKernel(modelShapes(plan, 'bf16'), tuning)], { spec: plan.spec, specFile: plan.specFile, precision: 'bf16' });
    const build = await buildKernels([{ fileName: emitted!.fileName.replace(/^ops\//, ''), source: emitted!.source }], join(outDir, plan.spec, label), { arches: ['sm_90a'], jobs: 2 });
    for (const { build: b } of build.builds) {
      if (b.warnings.length > 0) throw new Error(`${label}: ${b.warnings.join('\n')}`);
      for (const f of b.functions) console.log(`${plan.spec} ${label} ${f.name}: ${f.registers} registers, ${f.spillStoreBytes + f.spillLoadBytes} spill bytes, ${f.sharedBytes} bytes shared`);
    }
  }
}
