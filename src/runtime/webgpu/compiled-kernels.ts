// The spec's compiled WGSL kernels that training launches, read through the compile folder's
// manifest (../compiled-kernels.ts). The trainer computes in float32, so it takes the f32
// kernels — which a spec whose target asks for f16 also gets (src/backends/emit-kernels.ts).
import type { WgslManifestKernel } from '../../backends/manifest.ts';
import type { Plan } from '../../plan/plan.ts';
import { describeOrigin, loadCompiledKernels } from '../compiled-kernels.ts';
import { TRAINING_ROLES } from '../linear-kernel-choice.ts';

export interface CompiledWgslKernel {
  readonly manifest: WgslManifestKernel;
  readonly source: string;
}

export interface CompiledWgslKernels {
  readonly kernels: readonly CompiledWgslKernel[];
  /** One line for the user: what the linear layers run. */
  readonly summary: string;
}

export async function compiledWgslKernels(plan: Plan, dir?: string): Promise<CompiledWgslKernels> {
  const compiled = await loadCompiledKernels(plan, { ...(dir !== undefined ? { dir } : {}), targets: ['wgsl'] });
  const wgsl = compiled.manifest.kernels.filter((k): k is WgslManifestKernel => k.target === 'wgsl');
  if (wgsl.length === 0) {
    return { kernels: [], summary: `spec ${plan.spec} has no wgsl target, so the linear layers run on the runtime's own op kernels` };
  }
  const kernels = wgsl
    .filter((k) => TRAINING_ROLES.includes(k.role) && k.requires.length === 0 && k.kernel.endsWith('_f32'))
    .map((k) => ({ manifest: k, source: compiled.text(k.file) }));
  return { kernels, summary: `${kernels.length} compiled f32 WGSL kernels of spec ${plan.spec} for the quantized linear layers, ${describeOrigin(compiled)}` };
}
