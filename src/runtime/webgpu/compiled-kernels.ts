// The spec's compiled WGSL kernels that training launches: the same sources and manifest
// entries `qalc compile` writes to generated/<spec>/wgsl and manifest.json (emitted from the plan
// here, byte for byte what the compile writes; the generated/ staleness test holds the two
// together). The trainer computes in float32, so it takes the f32 kernels — which a spec whose
// target asks for f16 also gets (src/backends/emit-kernels.ts).
import { emitWgslKernels } from '../../backends/emit-kernels.ts';
import type { KernelManifest } from '../../backends/wgsl/manifest.ts';
import type { Plan } from '../../plan/plan.ts';
import { TRAINING_ROLES } from '../linear-kernel-choice.ts';

export interface CompiledWgslKernel {
  readonly manifest: KernelManifest;
  readonly source: string;
}

export interface CompiledWgslKernels {
  readonly kernels: readonly CompiledWgslKernel[];
  /** One line for the user: what the linear layers run. */
  readonly summary: string;
}

export function compiledWgslKernels(plan: Plan): CompiledWgslKernels {
  const emitted = emitWgslKernels(plan);
  if (emitted.length === 0) {
    return { kernels: [], summary: `spec ${plan.spec} has no wgsl target, so the linear layers run on the runtime's own op kernels` };
  }
  const kernels = emitted
    .filter((e) => TRAINING_ROLES.includes(e.manifest.role) && e.manifest.requires.length === 0 && e.manifest.kernel.endsWith('_f32'))
    .map((e) => ({ manifest: e.manifest, source: e.source }));
  return { kernels, summary: `${kernels.length} compiled f32 WGSL kernels of spec ${plan.spec} for the quantized linear layers` };
}
