// The model ops on CUDA: every op of a training step that is not a QA-LoRA linear layer
// (embedding, RMSNorm, RoPE, SwiGLU, the residual glue, the f32 <-> 16-bit conversions around
// the linear kernels, lm_head, cross-entropy, attention, AdamW, the gradient norm's sum of
// squares and, for a spec with adapter dropout, the dropout multipliers; beside them the unpool of
// the adapter's input gradient that the quantized layers' dequantize + cuBLAS path adds into dx),
// each a kernel that `qalc compile` emits from templates/cuda/ops/ with the spec's shapes baked in
// as constants (src/backends/cuda/model-op-emit.ts prints them).
//
// This file is the list: which kernels a plan needs, each described once in its own file under
// model-ops/ (its constants, its entry points with their parameters in launch order, block,
// dynamic shared memory, the grid rule its header documents, and one line of math). The
// manifest's "modelOps" section is this description plus the file and its code hash, so the
// runtime launches them without reading a template. Semantics are exactly the TypeScript
// reference ops' (src/runtime/typescript/*.ts): float32 row-major global memory, forwards
// overwrite, backwards accumulate (+=) — but for the entry points at a linear layer (RMSNorm's
// forwardToActivation, SwiGLU's and the residual add's and RoPE's …Activation ones), whose
// activations there are the linear kernels' 16-bit type, widened on load and rounded to nearest
// even on store exactly as the conversions between them would.
import type { ScalarType } from '../../ir/kernel-ir.ts';
import { planPrecision } from '../../ir/passes/share-layers.ts';
import type { Plan } from '../../plan/plan.ts';
import type { ModelOp } from './model-op-names.ts';
import { adamwKernel } from './model-ops/adamw.ts';
import { attentionKernel, attentionUnsupported } from './model-ops/attention.ts';
import { convertKernel } from './model-ops/convert.ts';
import { crossEntropyKernel } from './model-ops/cross-entropy.ts';
import { decodeAttentionKernel, decodeAttentionUnsupported } from './model-ops/decode-attention.ts';
import { dropoutKernel } from './model-ops/dropout.ts';
import { embeddingKernel } from './model-ops/embedding.ts';
import { lmHeadKernel } from './model-ops/lm-head.ts';
import { residualKernel } from './model-ops/residual.ts';
import { rmsnormKernel } from './model-ops/rmsnorm.ts';
import { ropeKernel } from './model-ops/rope.ts';
import { modelShapes, type ModelShapes } from './model-ops/shapes.ts';
import { sumSquaresKernel } from './model-ops/sum-squares.ts';
import { swigluKernel } from './model-ops/swiglu.ts';
import { unpoolKernel } from './model-ops/unpool.ts';

export type { ModelOp } from './model-op-names.ts';

export interface ModelOpParameter {
  readonly name: string;
  /** How the launch passes it: a device pointer (64 bits), a uint32_t or a float. */
  readonly type: 'pointer' | 'u32' | 'f32';
  /** Its C type in the kernel's signature: `const float*`, `__nv_bfloat16*`, `int32_t*`, `uint32_t`, `float` (every op of this folder sets it; attention's may not). */
  readonly cType?: string;
  /** What it holds: shape and element type, read, written or accumulated, or what a scalar means. */
  readonly doc?: string;
}

export interface ModelOpEntry {
  /** 'forward', 'backward', ... */
  readonly name: string;
  /** The extern "C" __global__ function: `<kernel>__<name>`. */
  readonly symbol: string;
  /** In launch order. */
  readonly parameters: readonly ModelOpParameter[];
  readonly block: readonly [number, number, number];
  /** Dynamic shared memory the launch passes (0 if static only). */
  readonly sharedBytes: number;
  /** The grid as the runtime computes it from the call's sizes: documentation, the runtime owns the arithmetic. */
  readonly grid?: string;
  /** One line of math for the header and `qalc inspect`. */
  readonly computes: string;
}

export interface ModelOpKernel {
  /** File stem, from numbers and enums only: 'rmsnorm_c64_bf16'. */
  readonly kernel: string;
  readonly op: ModelOp;
  /** Under templates/cuda/: 'ops/rmsnorm.cu.hbs'. */
  readonly template: string;
  readonly constants: Readonly<Record<string, number>>;
  readonly entryPoints: readonly ModelOpEntry[];
}

/** Where an emitted file came from, for its header. */
export interface ModelOpOrigin {
  readonly spec: string;
  readonly specFile: string;
  /** Set when the file was emitted in fp16 on request, not as the spec says. */
  readonly precisionNote?: string;
}

/** Every op's kernel description, in the order of a training step, then generation's. */
function describedKernels(shapes: ModelShapes, needs: { readonly dropout: boolean; readonly unpool: boolean }): ModelOpKernel[] {
  // Causal grouped-query flash attention (model-ops/attention.ts); a head size it does not take keeps attention on the host.
  // bf16 q, k, v, dOut and out where the activations are bf16 (attentionIoOf).
  const attention = attentionUnsupported(shapes) === null ? [attentionKernel(shapes)] : [];
  // The dropout multipliers only where a layer's adapter drops (p > 0): otherwise no kernel binds them.
  const dropout = needs.dropout ? [dropoutKernel()] : [];
  // dx += c·unpool(du) for the dequantize + cuBLAS path: only where a quantized layer has both a
  // dequantize kernel and an adapter (the fused backward_data kernels unpool in their epilogue).
  const unpool = needs.unpool ? [unpoolKernel(shapes)] : [];
  // One token's attention over the KV cache, for `qalc generate --backend cuda`.
  const decodeAttention = decodeAttentionUnsupported(shapes) === null ? [decodeAttentionKernel(shapes)] : [];
  return [
    embeddingKernel(shapes), rmsnormKernel(shapes), convertKernel(shapes), ropeKernel(shapes), ...attention, residualKernel(shapes), swigluKernel(shapes),
    lmHeadKernel(shapes), crossEntropyKernel(shapes), sumSquaresKernel(), adamwKernel(), ...dropout, ...unpool, ...decodeAttention,
  ];
}

export interface ModelOpOptions {
  /** The 16-bit type the linear kernels bind (convert's target); default the plan's `target cuda` activation. */
  readonly precision?: ScalarType;
}

/** The model-op kernels a plan needs on CUDA, deduplicated by kernel name. */
export function modelOpKernels(plan: Plan, options: ModelOpOptions = {}): readonly ModelOpKernel[] {
  const shapes = modelShapes(plan, options.precision ?? planPrecision(plan, 'cuda'));
  const byName = new Map<string, ModelOpKernel>();
  const needs = {
    dropout: plan.layers.some((layer) => (layer.adapter?.dropout ?? 0) > 0),
    unpool: plan.layers.some((layer) => layer.adapter !== null && layer.kernels.includes('dequantize') && layer.kernels.includes('adapter_grad')),
  };
  for (const kernel of describedKernels(shapes, needs)) if (!byName.has(kernel.kernel)) byName.set(kernel.kernel, kernel);
  return [...byName.values()];
}
