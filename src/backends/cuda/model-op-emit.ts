// Emitting the model-op kernels (model-ops.ts) as CUDA: each description through its template
// under templates/cuda/ops/, with the header (model-op-header.ts), its constants as constexpr
// values in a namespace of its own, and per entry point its symbol and C signature, written from
// the description's parameter list so that what the manifest says the runtime passes is what
// the kernel takes. Deterministic: same plan, same bytes.
import type { ScalarType } from '../../ir/kernel-ir.ts';
import { C_TYPES, CONVERSIONS, floatLiteral } from './emit.ts';
import { cTypeOf, modelOpHeaderLines } from './model-op-header.ts';
import type { ModelOpKernel, ModelOpOrigin } from './model-ops.ts';
import { renderAttentionKernel } from './model-ops/attention.ts';
import { cudaTemplates } from './templates.ts';

export interface EmittedModelOp {
  readonly kernel: ModelOpKernel;
  /** Relative to the compile folder's cuda/: `ops/<kernel>.cu`. */
  readonly fileName: string;
  readonly source: string;
}

function signatureOf(entry: ModelOpKernel['entryPoints'][number]): string {
  return entry.parameters.map((p) => (p.type === 'pointer' ? `${cTypeOf(p)} __restrict__ ${p.name}` : `${cTypeOf(p)} ${p.name}`)).join(', ');
}

function contextOf(kernel: ModelOpKernel, origin: ModelOpOrigin, activation: ScalarType): object {
  const [toFloat, fromFloat] = CONVERSIONS[activation];
  return {
    headerLines: modelOpHeaderLines(kernel, origin),
    namespace: `qalc_${kernel.kernel}`,
    constantLines: Object.entries(kernel.constants).map(([name, value]) => ({
      name, type: Number.isInteger(value) ? 'uint32_t' : 'float', literal: Number.isInteger(value) ? `${value}u` : floatLiteral(value),
    })),
    // Each constant by its own name as well, for templates that print one inline.
    ...kernel.constants,
    entry: Object.fromEntries(kernel.entryPoints.map((e) => [e.name, { symbol: e.symbol, signature: signatureOf(e), threads: e.block[0] * e.block[1] * e.block[2] }])),
    activationType: C_TYPES[activation],
    toFloat,
    fromFloat,
  };
}

export function emitModelOp(kernel: ModelOpKernel, origin: ModelOpOrigin, activation: ScalarType): EmittedModelOp {
  const fileName = `ops/${kernel.kernel}.cu`;
  // Attention's file has its own renderer: its header lists four entry points' tiling.
  if (kernel.op === 'attention') return { kernel, fileName, source: renderAttentionKernel(kernel, origin).source };
  const stem = kernel.template.replace(/^ops\//, '').replace(/\.cu\.hbs$/, '');
  const template = cudaTemplates('ops/').get(stem);
  if (!template) throw new Error(`no CUDA template ${kernel.template} for model op ${kernel.kernel}`);
  return { kernel, fileName, source: template(contextOf(kernel, origin, activation)).replace(/\n{3,}/g, '\n\n') };
}
