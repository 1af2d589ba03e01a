// Where a runtime gets a spec's compiled kernels: the compile folder `qalc compile` wrote
// (generated/<spec> by default) when its manifest.json was compiled from this plan, otherwise
// one in-memory compile of the plan — the same outputs `qalc compile` would write, read back
// through the same parseManifest. A runtime never lowers or emits kernels itself.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kernelPlanHash, parseManifest, type KernelManifest } from '../backends/manifest.ts';
import type { Target } from '../ir/kernel-ir.ts';
import type { Plan } from '../plan/plan.ts';

export interface CompiledKernels {
  readonly manifest: KernelManifest;
  /** The compile folder they were read from; null when they were compiled in memory just now. */
  readonly dir: string | null;
  /** Why the compile folder was not used ('' when it was). */
  readonly why: string;
  /** A file of the compile output by its manifest path: `wgsl/NAME.wgsl`, `cuda/NAME.cu`. */
  text(file: string): string;
}

/** Where `qalc compile` writes a spec's output unless told otherwise. */
export function defaultCompileDir(plan: Plan): string {
  return join('generated', plan.spec);
}

function fromFolder(plan: Plan, dir: string): CompiledKernels | string {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path)) return `${dir} has no manifest.json`;
  const manifest = parseManifest(readFileSync(path, 'utf8'), path);
  if (manifest.planHash !== kernelPlanHash(plan)) return `${path} was compiled from another plan of spec ${manifest.spec}`;
  return { manifest, dir, why: '', text: (file) => readFileSync(join(dir, file), 'utf8') };
}

async function inMemory(plan: Plan, targets: readonly Target[] | undefined, why: string): Promise<CompiledKernels> {
  const { kernelOutputs } = await import('../compile.ts');
  const files = new Map((await kernelOutputs(plan, targets)).map((f) => [f.path, f.text]));
  const manifest = parseManifest(files.get('manifest.json')!, `the in-memory compile of ${plan.specFile}`);
  const text = (file: string) => {
    const found = files.get(file);
    if (found === undefined) throw new Error(`the compile of ${plan.specFile} wrote no ${file}`);
    return found;
  };
  return { manifest, dir: null, why, text };
}

/** The compiled kernels of the plan; compiled in memory, only for `targets`, when the folder does not hold them. */
export async function loadCompiledKernels(plan: Plan, options: { readonly dir?: string; readonly targets?: readonly Target[] } = {}): Promise<CompiledKernels> {
  const found = fromFolder(plan, options.dir ?? defaultCompileDir(plan));
  return typeof found === 'string' ? inMemory(plan, options.targets, found) : found;
}

/** For a notice: where the kernels came from. */
export function describeOrigin(compiled: CompiledKernels): string {
  return compiled.dir !== null ? `from ${compiled.dir}` : `compiled in memory (${compiled.why}; \`qalc compile\` writes them once)`;
}
