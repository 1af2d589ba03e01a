import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../../write-file.ts';
import { UsageError, type Command } from '../usage.ts';

export const compileCommand: Command = {
  name: 'compile',
  summary: 'Compile a spec: check it, plan every layer, lower the plan to CUDA and WGSL kernels with their manifest, and generate the TypeScript bindings, all in generated/<name>/ (or --out DIR). With nvcc on PATH it also builds a fatbin per CUDA architecture and keeps the ptxas report beside each kernel.',
  usage: 'qalc compile SPEC [--out DIR] [--no-build]',
  options: {
    out: { type: 'string' },
    'no-build': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  optionHelp: {
    out: 'output directory (default: generated/<spec name>)',
    'no-build': 'write the CUDA sources without running nvcc (a cold build of a large spec takes minutes)',
    help: 'show this help',
  },
  async run(positionals, values) {
    // Loaded on demand, so `qalc --help` and the other verbs don't pay for this one's stages.
    const { frontEnd, compileOutputs } = await import('../../compile.ts');
    const { reportDiagnostics } = await import('../report.ts');
    if (positionals.length !== 1) throw new UsageError('compile takes exactly one spec file', 'compile');
    const result = frontEnd(positionals[0]!);
    const status = reportDiagnostics(result);
    if (!result.plan) return status;
    const out = (values.out as string | undefined) ?? join('generated', result.plan.spec);
    const files = await compileOutputs(result.plan, positionals[0]!, out);
    for (const file of files) writeFileAtomic(join(out, file.path), file.text);
    const count = (dir: string) => files.filter((f) => f.path.startsWith(dir)).length;
    const others = files.filter((f) => !f.path.includes('/')).map((f) => f.path);
    process.stderr.write(`wrote ${out}: ${count('cuda/')} CUDA and ${count('wgsl/')} WGSL kernels, ${others.join(', ')}\n`);
    if (!qalcResolvesFrom(out)) {
      process.stderr.write(`note: ${join(out, 'train.mts')} imports qalc by its package name, which does not resolve from ${out}: run it from a folder of a project that has qalc installed (npm install qalc)\n`);
    }
    const cudaSources = files.filter((f) => f.path.startsWith('cuda/')).map((f) => ({ fileName: f.path.slice('cuda/'.length), source: f.text }));
    if (cudaSources.length > 0 && !values['no-build']) {
      const { buildKernels } = await import('../../backends/cuda/nvcc.ts');
      const { nvccProgress } = await import('../build-progress.ts');
      const arches = (result.plan.targets.cuda?.arch as readonly ('sm_80' | 'sm_90a')[] | undefined) ?? undefined;
      const build = await buildKernels(cudaSources, join(out, 'cuda'), { ...(arches ? { arches } : {}), onProgress: nvccProgress() });
      process.stderr.write(`${build.message}\n`);
      const functions = build.builds.flatMap((b) => b.build.functions);
      if (functions.length > 0) {
        const spills = functions.filter((f) => f.spillStoreBytes > 0 || f.spillLoadBytes > 0).length;
        const registers = Math.max(...functions.map((f) => f.registers));
        process.stderr.write(`ptxas: ${functions.length} kernels, at most ${registers} registers, ${spills} with spills (reports in ${join(out, 'cuda', '*.ptxas.txt')})\n`);
      }
    }
    return status;
  },
};

/** Whether `import … from 'qalc/…'` in a generated file finds qalc: a node_modules/qalc above it, or this repository. */
function qalcResolvesFrom(out: string): boolean {
  try {
    createRequire(resolve(out, 'train.mts')).resolve('qalc/package.json');
    return true;
  } catch {
    return false;
  }
}
