// The kernel IR: what the compiler decided about each kernel, between the plan and a backend.
//
// One LayerConfig per distinct layer shape (identical layers share every kernel), one
// KernelIR per (config, role). A kernel's record says everything a backend needs to print it
// and a runtime needs to launch it: compile-time constants, dtypes, the packed-weight layout,
// tiling, which work is fused where, bindings, uniforms and the dispatch formula of each entry
// point. Backends (WGSL today, CUDA next) choose syntax only; they make no decisions.
//
// Sizes that depend on the batch are linear in T, the runtime token count (SizeExpr).
import type { KernelRole } from '../plan/plan.ts';

export type Target = 'wgsl' | 'cuda';

/** Scalar types of buffers and arithmetic, named as the IR names them (not as a target does). */
export type ScalarType = 'f32' | 'f16' | 'bf16' | 'u32' | 'i32';

/** tokens·T + constant: a size that may grow with the batch. */
export interface SizeExpr {
  readonly tokens: number;
  readonly constant: number;
}

/** ⌈count / per⌉ workgroups along one dispatch axis. */
export interface DispatchDim {
  readonly count: SizeExpr;
  readonly per: number;
}

/** The key on which layers share kernels: every field changes the generated code. */
export interface LayerConfig {
  /** Stable id derived from the fields below: `k172_n64_b4_g43_qalora_r4_mean`. */
  readonly id: string;
  /** K: columns of x and dx. */
  readonly inFeatures: number;
  /** K rounded up to a multiple of the group (pad = zero); the weight has this many rows. */
  readonly paddedInFeatures: number;
  /** N. */
  readonly outFeatures: number;
  readonly bits: 2 | 3 | 4 | 8;
  readonly group: number;
  /** L = paddedInFeatures / group. */
  readonly groups: number;
  readonly symmetric: boolean;
  readonly adapter: AdapterConfig | null;
  /** Plan layers that use this configuration, in plan order. */
  readonly layers: readonly string[];
  /** `file:line` of every spec line that shaped any of those layers, deduplicated, in order. */
  readonly sources: readonly string[];
}

export interface AdapterConfig {
  readonly kind: 'qalora';
  readonly rank: number;
  readonly pooling: 'mean' | 'sum';
  /** u = poolingFactor · Σ_{i∈group} x_i: 1/g for mean, 1 for sum. */
  readonly poolingFactor: number;
  /** Dropout > 0 somewhere: kernels take a T×L multiplier buffer (0 or 1/(1−p)). */
  readonly dropout: boolean;
}

export type ShapeClass =
  /** Output tiles over (tokens × columns), reduction in chunks through workgroup memory. */
  | 'tiled'
  /** T ≤ maxTokens: one thread per output column for every token, weights read once. */
  | 'decode'
  /** One invocation per output element (or group, or packed word); no reduction tiling. */
  | 'elementwise'
  /** The small adapter products (rank-wide); one invocation per output element. */
  | 'adapter';

export interface KernelDtypes {
  /** x, y, dy, dx, u, v, du, dv and the dense weight. */
  readonly activation: ScalarType;
  /** Every sum; never narrower than f32. */
  readonly accumulate: ScalarType;
  /** groupScales and groupZeros as the kernels read them (float zeros: see WeightLayout). */
  readonly scale: ScalarType;
  readonly zero: ScalarType;
  /** A, B, dA, dB and the dropout multipliers. */
  readonly adapter: ScalarType;
  /** qweight words and unpacked codes. */
  readonly code: ScalarType;
}

/**
 * GPTQ v1 qweight, as src/quant/gptq-pack.ts writes it: u32 words [⌈Kp·b/32⌉, N]; column o is
 * one little-endian bit stream of the codes of inputs 0…Kp−1, code i at stream bits i·b…i·b+b−1
 * (lowest input in the lowest bits), stream bit p in bit p mod 32 of word row ⌊p/32⌋. For b = 3
 * codes straddle words (codes 10 and 21 of every 32). Scales and zeros are float [L, N]: zeros
 * are floats in the kernels (not v1's packed z − 1) so merged, fractional zeros need no change.
 */
export interface WeightLayout {
  readonly format: 'gptq-v1';
  readonly bits: number;
  readonly wordRows: number;
  readonly codeMask: number;
  readonly codesStraddleWords: boolean;
  /** Group of input row i: ⌊i / group⌋ (desc_act / g_idx permutations are refused upstream). */
  readonly groupIndex: 'sequential';
}

export interface Tiling {
  /** Threads per workgroup, x fastest. */
  readonly workgroupSize: readonly [number, number, number];
  /** Output tile: rows are tokens, columns are outputs (N, or K for backward_data). */
  readonly tileRows: number;
  readonly tileColumns: number;
  /** Reduction chunk staged through workgroup memory (inputs for forward, outputs for dx). */
  readonly tileReduce: number;
  /** Forward: reduction chunks per quantization group, so every chunk lies in one group. */
  readonly chunksPerGroup: number;
  /**
   * WGSL tiled kernels: the outputs one invocation computes (rows × columns of the tile, strided
   * by the workgroup's rows and columns); the workgroup is tile / threadTile. Absent for CUDA,
   * whose portable tiles are one output per thread (its tensor-core tiles are choose-cuda.ts's).
   */
  readonly threadTile?: { readonly rows: number; readonly columns: number };
  /** decode: the largest T it accepts. */
  readonly maxTokens: number;
  /** Bytes of workgroup memory the kernel declares (checked against the target's limit). */
  readonly workgroupBytes: number;
}

/** The pooled input u = pool(x), computed from the input tiles the matmul already loaded. */
export interface PoolingFusion {
  readonly group: number;
  readonly groups: number;
  readonly factor: number;
  /** u is written (by the first column block) for the backward. */
  readonly saves: 'pooledInput';
}

export type Epilogue =
  | { readonly kind: 'none' }
  /** y += σ·v·B, v = drop(u)·A accumulated group by group; v is written for the backward. */
  | { readonly kind: 'adapter'; readonly rank: number; readonly dropout: boolean; readonly saves: 'adapterActivation' }
  /** dx += unpool(du): poolingFactor · du[t, ⌊i/g⌋]. */
  | { readonly kind: 'unpool'; readonly factor: number; readonly group: number };

export type Access = 'read' | 'read_write' | 'uniform';

/**
 * A named tensor inside a binding. WebGPU guarantees only 8 storage buffers per shader stage,
 * so tensors that always travel together share one binding: s and z as groupScalesAndZeros,
 * A and B as adapterWeights (one flat parameter buffer per layer for the optimizer), dA and dB
 * as adapterWeightGrads in the same layout.
 */
export interface BindingPart {
  readonly name: string;
  /** Elements from the start of the binding. */
  readonly offset: number;
  readonly shape: readonly SizeExpr[];
  readonly doc: string;
}

export interface Binding {
  readonly binding: number;
  /** A meaningful identifier, used verbatim in generated source. */
  readonly name: string;
  readonly elementType: ScalarType | 'params';
  readonly shape: readonly SizeExpr[];
  readonly access: Access;
  readonly doc: string;
  /** Empty for a binding that holds one tensor. */
  readonly parts: readonly BindingPart[];
}

export interface UniformField {
  readonly name: string;
  readonly type: 'u32' | 'f32';
  readonly offset: number;
  readonly doc: string;
}

export interface EntryPoint {
  readonly name: string;
  readonly computes: string;
  readonly dispatch: readonly [DispatchDim, DispatchDim, DispatchDim];
  /** Binding indices this entry point touches. */
  readonly uses: readonly number[];
}

export interface Constant {
  readonly name: string;
  readonly value: number;
  readonly type: 'u32' | 'f32';
}

/** One kernel as lowering builds it: early passes leave later fields unset. */
export interface KernelIR {
  /** From numbers and enums only: `forward_k172_n64_b4_g43_qalora_r4_mean_f32`. */
  readonly name: string;
  readonly role: KernelRole;
  /**
   * The layer configurations this kernel serves. A role keys only on the fields it reads
   * (quantize ignores the adapter, adapter_grad the bit width), so configs may share it.
   */
  readonly configIds: readonly string[];
  /** Plan layers it serves, in plan order. */
  readonly layers: readonly string[];
  /** `file:line` of the spec lines that shaped those layers. */
  readonly sources: readonly string[];
  readonly shapeClass?: ShapeClass;
  readonly dtypes?: KernelDtypes;
  readonly weightLayout?: WeightLayout;
  readonly tiling?: Tiling;
  readonly pooling?: PoolingFusion | null;
  readonly epilogue?: Epilogue;
  readonly constants?: readonly Constant[];
  readonly bindings?: readonly Binding[];
  readonly uniforms?: readonly UniformField[];
  readonly entryPoints?: readonly EntryPoint[];
}

/** A kernel after every pass: nothing left unset. */
export type LoweredKernel = Required<KernelIR>;

export interface TargetLimits {
  readonly maxInvocationsPerWorkgroup: number;
  readonly maxWorkgroupBytes: number;
  readonly maxStorageBuffersPerStage: number;
  /** Threads that run in lock-step (subgroup / warp): tiles are multiples of it where possible. */
  readonly lockstepWidth: number;
}

export interface KernelProgram<K extends KernelIR = KernelIR> {
  readonly target: Target;
  /** 'f32' | 'f16' for WGSL, 'fp16' | 'bf16' activations for CUDA. */
  readonly precision: ScalarType;
  readonly limits: TargetLimits;
  readonly spec: string;
  readonly specFile: string;
  readonly configs: readonly LayerConfig[];
  readonly kernels: readonly K[];
  /** Plan layers or roles no kernel was made for, and why (e.g. plain LoRA, dense layers). */
  readonly skipped: readonly string[];
}

export type LoweredProgram = KernelProgram<LoweredKernel>;
