// The types of generated/<name>/kernels.mts: every emitted kernel as a typed value — its buffers
// with their element types and shapes, its uniform struct, and how to launch it for T tokens.
// A runtime needs nothing else to drive a kernel (src/runtime/webgpu/run-kernel.ts does).

export type ElementType = 'f32' | 'f16' | 'bf16' | 'u32' | 'i32';

/** How a buffer of this element type is held on the host: 16-bit floats as their raw bits. */
export type HostArrayOf<E extends ElementType> = E extends 'f32' ? Float32Array : E extends 'u32' ? Uint32Array : E extends 'i32' ? Int32Array : Uint16Array;

export interface BufferPart {
  readonly name: string;
  /** In elements from the start of the binding. */
  readonly offset: number;
  readonly shape: (tokens: number) => readonly number[];
}

export interface BufferBinding<E extends ElementType = ElementType> {
  readonly binding: number;
  readonly elementType: E;
  readonly access: 'read' | 'read_write';
  readonly shape: (tokens: number) => readonly number[];
  /** Tensors packed back to back into this binding (WebGPU's limit of 8 storage buffers). */
  readonly parts: readonly BufferPart[];
}

interface KernelCommon<Buffers> {
  readonly name: string;
  readonly role: string;
  /** Relative to the generated folder. */
  readonly file: string;
  readonly layers: readonly string[];
  /** `spec.qal:LINE` of the lines that shaped those layers. */
  readonly sources: readonly string[];
  readonly constants: Readonly<Record<string, number>>;
  readonly buffers: { readonly [K in keyof Buffers]: BufferBinding };
}

export interface WgslKernel<Buffers, Uniforms> extends KernelCommon<Buffers> {
  readonly target: 'wgsl';
  /** WGSL extensions the module enables (`f16`). */
  readonly requires: readonly string[];
  readonly uniforms: { readonly binding: number; readonly size: number; readonly fields: { readonly [K in keyof Uniforms]: { readonly offset: number; readonly type: 'u32' | 'f32' } } } | null;
  /** Run in this order. */
  readonly entryPoints: readonly {
    readonly name: string;
    readonly workgroupSize: readonly [number, number, number];
    readonly dispatch: (tokens: number) => readonly [number, number, number];
    readonly bindings: readonly number[];
  }[];
  readonly maxTokens?: number;
}

export interface CudaKernel<Buffers> extends KernelCommon<Buffers> {
  readonly target: 'cuda';
  /** Host launchers compiled into the file: `<kernel>__<entry>__launch`. */
  readonly launchers: readonly string[];
  /** Every extern "C" variant; the launcher picks by T. */
  readonly launches: readonly {
    readonly symbol: string;
    readonly entryPoint: string;
    readonly minTokens: number;
    readonly maxTokens: number | null;
    readonly block: readonly [number, number, number];
    readonly grid: (tokens: number) => readonly [number, number, number];
    readonly sharedBytes: number;
    /** A kernel launched first with the same parameters (the forward's u/v prologue), or null. */
    readonly prologue: { readonly symbol: string; readonly block: readonly [number, number, number]; readonly grid: (tokens: number) => readonly [number, number, number] } | null;
  }[];
}
