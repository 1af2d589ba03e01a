// What a model-op kernel description is a function of: the architecture's shapes (from the
// plan, never from weights) and the 16-bit type of the linear kernels' activations; and the
// small builders every description in this folder writes its entry points with, so that a
// symbol is always `<kernel>__<entry>` and a parameter always carries its C type and meaning.
import { headDim } from '../../../model/architecture.ts';
import type { ScalarType } from '../../../ir/kernel-ir.ts';
import type { Plan } from '../../../plan/plan.ts';
import type { ModelOpEntry, ModelOpParameter } from '../model-ops.ts';

export interface ModelShapes {
  /** Model width C. */
  readonly dim: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headSize: number;
  /** MLP width. */
  readonly hidden: number;
  readonly vocab: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  /** What the linear kernels bind: 'bf16' or 'f16'. */
  readonly activation: ScalarType;
}

export function modelShapes(plan: Plan, activation: ScalarType): ModelShapes {
  const a = plan.model.architecture;
  return {
    dim: a.dim, heads: a.heads, kvHeads: a.kvHeads, headSize: headDim(a), hidden: a.hiddenDim, vocab: a.vocab,
    rmsNormEps: a.rmsNormEps, ropeTheta: a.ropeTheta, activation,
  };
}

const ACTIVATION_TYPES: Readonly<Record<string, { readonly cType: string; readonly spelled: string }>> = {
  bf16: { cType: '__nv_bfloat16', spelled: 'bfloat16' },
  f16: { cType: '__half', spelled: 'half' },
};

/** The 16-bit type the linear kernels' activation bindings hold, as C spells it and as a doc line names it. */
export function activationType(op: string, shapes: Pick<ModelShapes, 'activation'>): { readonly cType: string; readonly spelled: string } {
  const type = ACTIVATION_TYPES[shapes.activation];
  if (!type) throw new Error(`${op}: no 16-bit CUDA type for activation ${shapes.activation}`);
  return type;
}

/** Threads of the one-dimensional elementwise kernels. */
export const ELEMENTWISE_THREADS = 256;

export const pointer = (name: string, cType: string, doc: string): ModelOpParameter => ({ name, type: 'pointer', cType, doc });
export const u32 = (name: string, doc: string): ModelOpParameter => ({ name, type: 'u32', cType: 'uint32_t', doc });
export const f32 = (name: string, doc: string): ModelOpParameter => ({ name, type: 'f32', cType: 'float', doc });

/** A device pointer to float32 data this entry point only reads. */
export const input = (name: string, doc: string): ModelOpParameter => pointer(name, 'const float*', `float ${doc}, read`);
/** A device pointer to float32 data this entry point writes (or accumulates into). */
export const output = (name: string, doc: string): ModelOpParameter => pointer(name, 'float*', `float ${doc}, written`);
/** A device pointer to a float32 gradient this entry point adds into (+=), as every backward does. */
export const accumulated = (name: string, doc: string): ModelOpParameter => pointer(name, 'float*', `float ${doc}, accumulated (+=)`);

export interface EntryDescription {
  readonly parameters: readonly ModelOpParameter[];
  readonly block: readonly [number, number, number];
  readonly sharedBytes?: number;
  readonly grid: string;
  readonly computes: string;
}

export function entryPoint(kernel: string, name: string, entry: EntryDescription): ModelOpEntry {
  return { name, symbol: `${kernel}__${name}`, parameters: entry.parameters, block: entry.block, sharedBytes: entry.sharedBytes ?? 0, grid: entry.grid, computes: entry.computes };
}

type ActivationCType = ReturnType<typeof activationType>;

/**
 * The decode step's buffer, uint32 [token, position]: what changes from one generated token to
 * the next, read by the kernels from device memory (the host writes it before each step), so
 * that the step's launches are the same every token and can be replayed as a CUDA graph.
 */
export const decodeStepInput = (): ModelOpParameter =>
  pointer('step', 'const uint32_t*', 'uint32 [2] = [token, position] of the token being decoded, read; position < the cache\'s capacity, checked by the host');

/** A device pointer to activations a linear kernel wrote (`type`: activationType's), which this entry point reads (widened to float exactly). */
export const activationInput = (type: ActivationCType, name: string, doc: string): ModelOpParameter => pointer(name, `const ${type.cType}*`, `${type.spelled} ${doc}, read`);
/** A device pointer to activations a linear kernel reads, which this entry point writes (rounded to nearest even). */
export const activationOutput = (type: ActivationCType, name: string, doc: string): ModelOpParameter => pointer(name, `${type.cType}*`, `${type.spelled} ${doc}, written (rounded to nearest even)`);

/** One thread per element of `count`: the grid rule of every elementwise entry point. */
export const elementwiseGrid = (count: string): string => `grid.x = ceil(${count} / ${ELEMENTWISE_THREADS})`;
