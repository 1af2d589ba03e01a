// The manifest fragment of one kernel: everything a runtime needs to launch it without reading
// the WGSL. Bindings of group 0 in index order, the uniform struct's layout, and per entry
// point its workgroup size and dispatch formula (linear in T, evaluated with size-expr.ts).
import type { Access, DispatchDim, LoweredKernel, LoweredProgram, ScalarType, SizeExpr } from '../../ir/kernel-ir.ts';
import { formatDispatch, formatShape } from '../../ir/size-expr.ts';

export interface ManifestBinding {
  readonly binding: number;
  readonly name: string;
  readonly elementType: ScalarType | 'params';
  /** `[T, 172]` */
  readonly shape: string;
  readonly shapeExpr: readonly SizeExpr[];
  readonly access: Access;
  /** Tensors packed into this binding, back to back (empty: the binding is one tensor). */
  readonly parts: readonly { readonly name: string; readonly offset: number; readonly shape: string; readonly shapeExpr: readonly SizeExpr[] }[];
}

export interface ManifestEntryPoint {
  readonly name: string;
  readonly computes: string;
  readonly workgroupSize: readonly [number, number, number];
  /** `["ceil(64 / 16)", "ceil(T / 16)", "1"]` */
  readonly dispatch: readonly [string, string, string];
  readonly dispatchExpr: readonly [DispatchDim, DispatchDim, DispatchDim];
  readonly bindings: readonly number[];
}

export interface KernelManifest {
  readonly kernel: string;
  readonly role: string;
  readonly target: 'wgsl';
  readonly file: string;
  /** WGSL extensions the module enables; a device without them cannot run it. */
  readonly requires: readonly string[];
  readonly layers: readonly string[];
  readonly constants: Readonly<Record<string, number>>;
  readonly bindings: readonly ManifestBinding[];
  readonly uniforms: {
    readonly struct: 'Params';
    readonly binding: number | null;
    /** Bytes, rounded up to WGSL's 16-byte uniform alignment. */
    readonly size: number;
    readonly fields: readonly { readonly name: string; readonly type: 'u32' | 'f32'; readonly offset: number }[];
  };
  readonly entryPoints: readonly ManifestEntryPoint[];
  /** decode only: the largest T it accepts. */
  readonly maxTokens?: number;
}

export function manifestOf(program: LoweredProgram, kernel: LoweredKernel, file: string): KernelManifest {
  const paramsBinding = kernel.bindings.find((b) => b.access === 'uniform');
  return {
    kernel: kernel.name,
    role: kernel.role,
    target: 'wgsl',
    file,
    requires: program.precision === 'f16' ? ['f16'] : [],
    layers: kernel.layers,
    constants: Object.fromEntries(kernel.constants.map((c) => [c.name, c.value])),
    bindings: kernel.bindings.map((b) => ({
      binding: b.binding, name: b.name, elementType: b.elementType, shape: formatShape(b.shape), shapeExpr: b.shape, access: b.access,
      parts: b.parts.map((p) => ({ name: p.name, offset: p.offset, shape: formatShape(p.shape), shapeExpr: p.shape })),
    })),
    uniforms: {
      struct: 'Params',
      binding: paramsBinding ? paramsBinding.binding : null,
      size: Math.ceil((4 * kernel.uniforms.length) / 16) * 16,
      fields: kernel.uniforms.map(({ name, type, offset }) => ({ name, type, offset })),
    },
    entryPoints: kernel.entryPoints.map((e) => ({
      name: e.name,
      computes: e.computes,
      workgroupSize: kernel.tiling.workgroupSize,
      dispatch: [formatDispatch(e.dispatch[0]), formatDispatch(e.dispatch[1]), formatDispatch(e.dispatch[2])],
      dispatchExpr: e.dispatch,
      bindings: e.uses,
    })),
    ...(kernel.shapeClass === 'decode' ? { maxTokens: kernel.tiling.maxTokens } : {}),
  };
}
