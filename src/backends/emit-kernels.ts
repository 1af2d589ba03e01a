// Both backends over one plan: the kernel sources `qalc compile` writes, and the manifest that
// tells a runtime how to launch each of them (entry points, buffer bindings and layouts, launch
// configuration, and the spec lines it came from). A spec's `target` blocks choose the
// backends; a spec without any gets both.
import { formatDispatch, formatShape } from '../ir/size-expr.ts';
import { lowerPlan } from '../ir/lower.ts';
import type { Target } from '../ir/kernel-ir.ts';
import type { Plan } from '../plan/plan.ts';
import { emitCuda, type EmittedCudaKernel } from './cuda/emit.ts';
import { emitWgsl, manifestJson, type EmittedWgslKernel } from './wgsl/emit.ts';
import type { KernelManifest } from './wgsl/manifest.ts';

export interface EmittedKernels {
  readonly wgsl: readonly EmittedWgslKernel[];
  readonly cuda: readonly EmittedCudaKernel[];
}

export function targetsOf(plan: Plan): Target[] {
  const named = Object.keys(plan.targets).filter((t): t is Target => t === 'cuda' || t === 'wgsl');
  return named.length > 0 ? named.sort() : ['cuda', 'wgsl'];
}

/**
 * WGSL f16 needs the adapter's `shader-f16`, which not every device offers: a spec that asks
 * for f16 gets the f32 kernels too, and the runtime falls back to them (and says so).
 */
function emitWgslWithFallback(plan: Plan): EmittedWgslKernel[] {
  const program = lowerPlan(plan, 'wgsl');
  const kernels = emitWgsl(program);
  return program.precision === 'f16' ? [...kernels, ...emitWgsl(lowerPlan(plan, 'wgsl', { precision: 'f32' }))] : kernels;
}

/** The WGSL kernels alone (none when the spec's target blocks leave wgsl out). */
export function emitWgslKernels(plan: Plan): EmittedWgslKernel[] {
  return targetsOf(plan).includes('wgsl') ? emitWgslWithFallback(plan) : [];
}

export function emitKernels(plan: Plan): EmittedKernels {
  const targets = targetsOf(plan);
  return {
    wgsl: emitWgslKernels(plan),
    cuda: targets.includes('cuda') ? emitCuda(lowerPlan(plan, 'cuda')) : [],
  };
}

/** A CUDA kernel's manifest entry: its buffers, and every extern "C" variant with its launch. */
function cudaManifest(emitted: EmittedCudaKernel) {
  const k = emitted.kernel;
  return {
    kernel: k.name,
    role: k.role,
    target: 'cuda' as const,
    file: `cuda/${emitted.fileName}`,
    layers: k.layers,
    sources: k.sources,
    constants: Object.fromEntries(k.constants.map((c) => [c.name, c.value])),
    bindings: k.bindings.map((b) => ({ binding: b.binding, name: b.name, elementType: b.elementType, shape: formatShape(b.shape), access: b.access })),
    launchers: emitted.launcherSymbols,
    launches: k.cuda.launches.map((l) => ({
      symbol: l.symbol,
      entryPoint: l.entryPoint,
      tokens: l.maxTokens === null ? `T >= ${l.minTokens}` : `${l.minTokens} <= T <= ${l.maxTokens}`,
      block: l.threads,
      grid: l.grid.map(formatDispatch),
      sharedBytes: l.sharedBytes,
      // A kernel to launch first, on the same stream, with the same parameters (the forward's u/v prologue).
      ...(l.prologue ? { prologue: { symbol: l.prologue.symbol, block: l.prologue.threads, grid: l.prologue.grid.map(formatDispatch) } } : {}),
    })),
  };
}

function wgslManifest(emitted: EmittedWgslKernel): KernelManifest & { readonly sources: readonly string[] } {
  return { ...emitted.manifest, file: `wgsl/${emitted.fileName}`, sources: emitted.kernel.sources };
}

export function manifestOfKernels(plan: Plan, kernels: EmittedKernels): string {
  return manifestJson({
    spec: plan.spec,
    specFile: plan.specFile,
    kernels: [...kernels.cuda.map(cudaManifest), ...kernels.wgsl.map(wgslManifest)],
  });
}
