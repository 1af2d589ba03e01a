// The compiler, as the list of its stages. Each stage is a function from one typed value to
// the next; `qalc inspect --stage` shows the value after any of them.
//
//   frontEnd:        load (lex, parse, includes) → check → plan
//   compileOutputs:  lower (every pass, the targets' own included) → emit CUDA / WGSL and the
//                    manifest → bindings
//
// `compileOutputs` turns a clean front end's plan into the files of generated/<name>/;
// `kernelOutputs` is its kernels alone, which a runtime compiles in memory when a spec has no
// compile folder.
import { hasErrors, sortDiagnostics, type Diagnostic } from './diagnostics/diagnostic.ts';
import type { CheckedSpec } from './check/checked-spec.ts';
import { checkSpec } from './check/check-spec.ts';
import type { Plan } from './plan/plan.ts';
import type { Target } from './ir/kernel-ir.ts';
import { buildPlan } from './plan/build-plan.ts';
import { jsonText } from './backends/escape.ts';
import type { EmittedKernels } from './backends/emit-kernels.ts';
import { loadSpec, sourcesOf, type LoadedSpec, type ReadText } from './syntax/load.ts';

export interface FrontEndResult {
  readonly loaded: LoadedSpec;
  readonly checked?: CheckedSpec;
  readonly plan?: Plan;
  /** Every diagnostic of every stage that ran, in source order. */
  readonly diagnostics: readonly Diagnostic[];
  /** File → text, to show source lines in messages. */
  readonly sources: ReadonlyMap<string, string>;
}

export function frontEnd(specPath: string, readText?: ReadText): FrontEndResult {
  const loaded = loadSpec(specPath, readText);
  const checked = checkSpec(loaded);
  // The plan's rules run even when earlier stages found errors, so one run reports them all;
  // but only a spec with no errors anywhere yields a plan.
  const planned = checked.spec ? buildPlan(checked.spec) : undefined;
  const diagnostics = sortDiagnostics([...loaded.diagnostics, ...checked.diagnostics, ...(planned?.diagnostics ?? [])]);
  const clean = !hasErrors(diagnostics);
  return {
    loaded,
    ...(clean && checked.spec ? { checked: checked.spec } : {}),
    ...(clean && planned?.plan ? { plan: planned.plan } : {}),
    diagnostics,
    sources: sourcesOf(loaded),
  };
}

export interface OutputFile {
  /** Relative to the output folder. */
  readonly path: string;
  readonly text: string;
}

// The later stages load on demand: `qalc check` and the other front-end verbs never pay for the
// emitters' templates or ts-morph.
async function kernelFiles(plan: Plan, kernels: EmittedKernels): Promise<OutputFile[]> {
  const { manifestOfKernels } = await import('./backends/emit-kernels.ts');
  const { serializeManifest } = await import('./backends/manifest.ts');
  return [
    ...kernels.cuda.map((k) => ({ path: `cuda/${k.fileName}`, text: k.source })),
    ...kernels.cudaOps.map((k) => ({ path: `cuda/${k.fileName}`, text: k.source })),
    ...kernels.wgsl.map((k) => ({ path: `wgsl/${k.fileName}`, text: k.source })),
    { path: 'manifest.json', text: serializeManifest(manifestOfKernels(plan, kernels)) },
  ];
}

/**
 * The kernels of a plan as `qalc compile` writes them: every CUDA and WGSL source (of `targets`,
 * by default the spec's) and manifest.json.
 */
export async function kernelOutputs(plan: Plan, targets?: readonly Target[]): Promise<OutputFile[]> {
  const { emitTargets, lowerTargets } = await import('./backends/emit-kernels.ts');
  const lowered = lowerTargets(plan, targets);
  return kernelFiles(plan, emitTargets(lowered));
}

/**
 * Everything `qalc compile` writes for a plan, in memory: the plan itself, the kernels and
 * their manifest, and the generated TypeScript. `outDir` matters because generated imports are
 * relative to where they will live.
 */
export async function compileOutputs(plan: Plan, specPath: string, outDir: string): Promise<OutputFile[]> {
  const { emitTargets, lowerTargets } = await import('./backends/emit-kernels.ts');
  const { generateBindings } = await import('./bindings/generate-bindings.ts');
  const lowered = lowerTargets(plan);
  const kernels = emitTargets(lowered);
  return [
    { path: 'plan.json', text: jsonText(plan) + '\n' },
    ...(await kernelFiles(plan, kernels)),
    ...generateBindings(plan, outDir, specPath, kernels),
  ];
}
