// What check_ops.py runs: for each spec, the compile folder `qalc compile` would write for its
// CUDA model ops — manifest.json (its "modelOps" section is what the check launches by) and
// cuda/ops/<kernel>.cu — with each op's sm_90a fatbin built beside it by the same nvcc path and
// cache (src/backends/cuda/nvcc.ts), and architecture.json (the plan's shapes, for the inputs'
// sizes). The linear kernels are not built: the check does not run them.
//
//   npx tsx test/backends/cuda/h200/ops/emit-op-kernels.ts OUT_DIR SPEC...
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { buildKernels } from '../../../../../src/backends/cuda/nvcc.ts';
import { frontEnd, kernelOutputs } from '../../../../../src/compile.ts';

const [outDir, ...specs] = process.argv.slice(2);
if (!outDir || specs.length === 0) throw new Error('usage: emit-op-kernels.ts OUT_DIR SPEC...');
for (const spec of specs) {
  const result = frontEnd(spec);
  if (!result.plan) throw new Error(`${spec} does not plan: ${result.diagnostics.map((d) => d.message).join('; ')}`);
  const folder = join(outDir, result.plan.spec);
  const files = (await kernelOutputs(result.plan, ['cuda'])).filter((f) => f.path === 'manifest.json' || f.path.startsWith('cuda/ops/'));
  for (const file of files) {
    mkdirSync(dirname(join(folder, file.path)), { recursive: true });
    writeFileSync(join(folder, file.path), file.text);
  }
  writeFileSync(join(folder, 'architecture.json'), `${JSON.stringify(result.plan.model.architecture, null, 2)}\n`);
  const ops = files.filter((f) => f.path.startsWith('cuda/ops/')).map((f) => ({ fileName: f.path.slice('cuda/'.length), source: f.text }));
  const build = await buildKernels(ops, join(folder, 'cuda'), { arches: ['sm_90a'], jobs: 2 });
  console.log(`${spec}: ${ops.length} model ops in ${folder}; ${build.message}`);
  for (const { fileName, build: b } of build.builds) {
    if (b.warnings.length > 0) throw new Error(`${fileName}: ${b.warnings.join('\n')}`);
  }
}
