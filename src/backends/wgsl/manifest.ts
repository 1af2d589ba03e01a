// One WGSL kernel's manifest entry (src/backends/manifest.ts): bindings of group 0 in index
// order, the uniform struct's layout, and per entry point a launch — its workgroup size, its
// dispatch as a function of T, the bindings it uses, and the T it accepts (decode: T ≤ its
// maxTokens).
import type { LoweredKernel, LoweredProgram } from '../../ir/kernel-ir.ts';
import { manifestBindings, type WgslManifestKernel } from '../manifest.ts';

export function manifestOf(program: LoweredProgram, kernel: LoweredKernel, file: string): WgslManifestKernel {
  const paramsBinding = kernel.bindings.find((b) => b.access === 'uniform');
  const tokens = kernel.shapeClass === 'decode' ? { min: 1, max: kernel.tiling.maxTokens } : { min: 0, max: null };
  return {
    kernel: kernel.name,
    role: kernel.role,
    target: 'wgsl',
    file,
    requires: program.precision === 'f16' ? ['f16'] : [],
    layers: kernel.layers,
    sources: kernel.sources,
    constants: Object.fromEntries(kernel.constants.map((c) => [c.name, c.value])),
    bindings: manifestBindings(kernel),
    uniforms: {
      binding: paramsBinding ? paramsBinding.binding : null,
      size: Math.ceil((4 * kernel.uniforms.length) / 16) * 16,
      fields: kernel.uniforms.map(({ name, type, offset }) => ({ name, type, offset })),
    },
    launches: kernel.entryPoints.map((e) => ({
      entryPoint: e.name,
      symbol: e.name,
      workgroup: kernel.tiling.workgroupSize,
      dispatch: e.dispatch,
      tokens,
      sharedBytes: kernel.tiling.workgroupBytes,
      bindings: e.uses,
    })),
  };
}
