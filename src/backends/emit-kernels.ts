// Both backends over one plan: the kernel sources `qalc compile` writes, and the manifest that
// tells a runtime how to launch each of them (entry points, buffer bindings and layouts, launch
// configuration, and the spec lines it came from). A spec's `target` blocks choose the
// backends; a spec without any gets both.
import { lowerPlan } from '../ir/lower.ts';
import type { LoweredProgram, Target } from '../ir/kernel-ir.ts';
import type { CudaProgram } from '../ir/passes/choose-cuda.ts';
import type { Plan } from '../plan/plan.ts';
import { emitCuda, type EmittedCudaKernel } from './cuda/emit.ts';
import { emitModelOp, type EmittedModelOp } from './cuda/model-op-emit.ts';
import { modelOpKernels, type ModelOpKernel } from './cuda/model-ops.ts';
import { codeHash, kernelPlanHash, manifestBindings, type CudaManifestKernel, type KernelManifest, type ModelOpManifestKernel, type WgslManifestKernel } from './manifest.ts';
import { emitWgsl, type EmittedWgslKernel } from './wgsl/emit.ts';

export interface EmittedKernels {
  readonly wgsl: readonly EmittedWgslKernel[];
  readonly cuda: readonly EmittedCudaKernel[];
  /** The CUDA model ops (every op but the linear layers), written to cuda/ops/. */
  readonly cudaOps: readonly EmittedModelOp[];
}

export function targetsOf(plan: Plan): Target[] {
  const named = Object.keys(plan.targets).filter((t): t is Target => t === 'cuda' || t === 'wgsl');
  return named.length > 0 ? named.sort() : ['cuda', 'wgsl'];
}

/** A plan lowered for each of its targets: what the emitters print. */
export interface LoweredTargets {
  readonly cuda: CudaProgram | null;
  /**
   * WGSL f16 needs the adapter's `shader-f16`, which not every device offers: a spec that asks
   * for f16 gets the f32 program too, and the runtime falls back to its kernels (and says so).
   */
  readonly wgsl: readonly LoweredProgram[];
  /** The model-op kernels of the CUDA program (none without a cuda target). */
  readonly modelOps: readonly ModelOpKernel[];
}

/** The lower stage: the plan for each of the spec's targets, or those of `only` among them. */
export function lowerTargets(plan: Plan, only?: readonly Target[]): LoweredTargets {
  const targets = targetsOf(plan).filter((t) => only === undefined || only.includes(t));
  const wgsl = targets.includes('wgsl') ? lowerPlan(plan, 'wgsl') : null;
  const cuda = targets.includes('cuda') ? lowerPlan(plan, 'cuda') : null;
  return {
    cuda,
    wgsl: wgsl === null ? [] : wgsl.precision === 'f16' ? [wgsl, lowerPlan(plan, 'wgsl', { precision: 'f32' })] : [wgsl],
    modelOps: cuda === null ? [] : modelOpKernels(plan, { precision: cuda.precision }),
  };
}

/** The emit stage: every kernel of every lowered program, through its target's templates. */
export function emitTargets(lowered: LoweredTargets): EmittedKernels {
  const cuda = lowered.cuda;
  return {
    wgsl: lowered.wgsl.flatMap(emitWgsl),
    cuda: cuda ? emitCuda(cuda) : [],
    cudaOps: cuda ? emitModelOps(lowered.modelOps, cuda) : [],
  };
}

/** The model ops of a CUDA program, each file's header naming the program's spec. */
export function emitModelOps(kernels: readonly ModelOpKernel[], program: Pick<CudaProgram, 'spec' | 'specFile' | 'precision'>): EmittedModelOp[] {
  const origin = { spec: program.spec, specFile: program.specFile, ...(program.precision === 'f16' ? { precisionNote: ' (target cuda { activation = fp16 })' } : {}) };
  return kernels.map((k) => emitModelOp(k, origin, program.precision));
}

/** Lower and emit: the spec's kernels, or those of `only` among its targets. */
export function emitKernels(plan: Plan, only?: readonly Target[]): EmittedKernels {
  return emitTargets(lowerTargets(plan, only));
}

/** A CUDA kernel's manifest entry: its buffers, and every extern "C" variant with its launch. */
function cudaManifest(emitted: EmittedCudaKernel): CudaManifestKernel {
  const k = emitted.kernel;
  const buffers = k.bindings.filter((b) => b.elementType !== 'params').map((b) => b.binding);
  return {
    kernel: k.name,
    role: k.role,
    target: 'cuda',
    file: `cuda/${emitted.fileName}`,
    layers: k.layers,
    sources: k.sources,
    constants: Object.fromEntries(k.constants.map((c) => [c.name, c.value])),
    bindings: manifestBindings(k),
    launchers: emitted.launcherSymbols,
    codeHash: codeHash(emitted.source),
    launches: k.cuda.launches.map((l) => ({
      entryPoint: l.entryPoint,
      symbol: l.symbol,
      workgroup: l.threads,
      dispatch: l.grid,
      tokens: { min: l.minTokens, max: l.maxTokens },
      sharedBytes: l.sharedBytes,
      bindings: buffers,
      // A kernel to launch first, on the same stream, with the same parameters (the forward's u/v prologue).
      ...(l.prologue ? { prologue: { symbol: l.prologue.symbol, workgroup: l.prologue.threads, dispatch: l.prologue.grid } } : {}),
    })),
  };
}

/** A model op's manifest entry: its description, where its source is, and the hash its fatbin must be built from. */
function modelOpManifest(emitted: EmittedModelOp): ModelOpManifestKernel {
  return { ...emitted.kernel, file: `cuda/${emitted.fileName}`, codeHash: codeHash(emitted.source) };
}

function wgslManifest(emitted: EmittedWgslKernel): WgslManifestKernel {
  return { ...emitted.manifest, file: `wgsl/${emitted.fileName}` };
}

/** The manifest of a plan's emitted kernels (manifest.json is serializeManifest of it). */
export function manifestOfKernels(plan: Plan, kernels: EmittedKernels): KernelManifest {
  return {
    spec: plan.spec,
    specFile: plan.specFile,
    planHash: kernelPlanHash(plan),
    kernels: [...kernels.cuda.map(cudaManifest), ...kernels.wgsl.map(wgslManifest)],
    modelOps: kernels.cudaOps.map(modelOpManifest),
  };
}
