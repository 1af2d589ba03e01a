// Causal grouped-query attention on CUDA, flash-attention style: the kernel description the
// runtime launches by (entry points, parameters, block, shared memory) and the .cu text rendered
// from templates/cuda/ops/attention.cu.hbs with the spec's shape baked in.
//
// Semantics: src/runtime/typescript/attention.ts, except that the forward saves the log-sum-exp
// lse[batch, heads, seqLen] instead of the T x T probabilities, and the backward recomputes them.
// The backward is three launches, in this order: backward_delta (delta = rowsum(dOut * out) into
// a float32 scratch [batch, heads, seqLen]), then backward_dq and backward_dkdv (either order),
// which ACCUMULATE into dq, dk, dv. dkdv owns whole rows of dk and dv (it loops over the group's
// query heads), so nothing is atomic and the result is deterministic.
//
// q, k, v, dOut and out are bf16 where the spec's activations are bf16 (as the linear layers and
// RoPE leave them: the kernels copy bf16 tiles straight into shared memory, which is also what the
// float32 form rounds them to), float32 otherwise (fp16 or float32 activations); dq, dk, dv, lse
// and delta are float32 in both.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import type { Architecture } from '../../../model/architecture.ts';
import { PROJECT_ROOT } from '../../../project-root.ts';
import { commentSafe, shellWord } from '../../escape.ts';
import { compileCommands } from '../nvcc-flags.ts';

import type { ModelOpKernel, ModelOpParameter } from '../model-ops.ts';

/** Head sizes the template takes: multiples of 8 up to 128 (padded to a multiple of 16 inside). */
export const MAX_ATTENTION_HEAD_SIZE = 128;

const DELTA_WARPS = 8;

/** The tile choices of one kernel: the defaults by head size (attentionTuning), or a variant's. */
export interface AttentionTuning {
  /** forward: warps a block (16 query rows each) and keys a step. */
  readonly forwardWarps: number;
  readonly forwardBlockKey: number;
  /** dq: warps a block (16 query rows each) and keys a step. */
  readonly dqWarps: number;
  readonly dqBlockKey: number;
  /** dkdv: warps a block (16 key rows each) and queries a step. */
  readonly dkdvWarps: number;
  readonly dkdvBlockQuery: number;
}

/**
 * The defaults, the fastest of the variants timed on the H200 (results-attention-*.md): head sizes
 * over 64 step over 32 keys in dq, which keeps q, dOut's operands (2 x 32 registers) and dq in
 * registers. The forward: 128-query blocks (8 warps) share each K, V tile between twice the rows of
 * 4 warps; with bf16 rows at a head size over 64, two 4-warp blocks fit a multiprocessor and ran faster
 * (a3f: 0.203 against 0.233 ms at the 7B shape, results-attention-6a1646a.md). dkdv: 32 queries a
 * step for float32 rows over a head size of 64 (dk, dv are 2 x 64 floats a thread); bf16 rows at
 * 128 take 64 a step, half the steps, barriers and fetches (a3e: dkdv 0.458 against 0.491 ms).
 */
export function attentionTuning(headSize: number, io: AttentionIo = 'f32'): AttentionTuning {
  const large = headSize > 64;
  if (large && io === 'bf16') return { forwardWarps: 4, forwardBlockKey: 64, dqWarps: 4, dqBlockKey: 32, dkdvWarps: 4, dkdvBlockQuery: 64 };
  return { forwardWarps: 8, forwardBlockKey: 64, dqWarps: 4, dqBlockKey: large ? 32 : 64, dkdvWarps: 4, dkdvBlockQuery: large ? 32 : 64 };
}

/** The element type of q, k, v, dOut and out. */
export type AttentionIo = 'bf16' | 'f32';

/** bf16 where the activations are bf16; float32 otherwise (the kernels' mma operands are bf16, so fp16 rows would round twice). */
export const attentionIoOf = (activation: string | undefined): AttentionIo => (activation === 'bf16' ? 'bf16' : 'f32');

/** The tile sizes and shared memory of one head size. */
export interface AttentionTiling extends AttentionTuning {
  readonly headPad: number;
  readonly forwardSharedBytes: number;
  readonly dqSharedBytes: number;
  readonly dkdvSharedBytes: number;
}

export function attentionTiling(headSize: number, tuning?: AttentionTuning, io: AttentionIo = 'f32'): AttentionTiling {
  tuning ??= attentionTuning(headSize, io);
  const headPad = Math.ceil(headSize / 16) * 16;
  const row = headPad + 8; // bf16 elements a row of a [rows][headPad] tile
  const bf16 = 2;
  const f32 = 4;
  // A loop's step holds two tiles (K and V, or q and dOut) of `rows` rows: bf16 io two stages of
  // their bf16 buffers; float io their float32 staging tiles (cp.async's) and one bf16 copy.
  const step = (rows: number) => (io === 'bf16' ? 2 * 2 * rows * row * bf16 : 2 * rows * (headPad * f32 + row * bf16));
  const { forwardWarps, forwardBlockKey, dqWarps, dqBlockKey, dkdvWarps, dkdvBlockQuery } = tuning;
  return {
    ...tuning,
    headPad,
    // The q tile (forward) or q and dOut (dq) pass through the same memory before the loop.
    forwardSharedBytes: Math.max(16 * forwardWarps * row * bf16, step(forwardBlockKey)),
    dqSharedBytes: Math.max(2 * 16 * dqWarps * row * bf16, step(dqBlockKey)),
    // K and V for the whole loop, a step's tiles, and two steps' lse and delta rows.
    dkdvSharedBytes: 2 * 16 * dkdvWarps * row * bf16 + step(dkdvBlockQuery) + 4 * dkdvBlockQuery * f32,
  };
}

/** A tensor parameter (float32 unless `io` says bf16): what it holds, and whether the kernel reads, writes or adds into it. */
const pointer = (name: string, access: 'read' | 'written' | 'accumulated (+=)', doc: string, io: AttentionIo = 'f32'): ModelOpParameter => {
  const [cType, spelled] = io === 'bf16' ? ['__nv_bfloat16', 'bf16'] : ['float', 'float'];
  return { name, type: 'pointer', cType: access === 'read' ? `const ${cType}*` : `${cType}*`, doc: `${spelled} ${doc}, ${access}` };
};
const SIZES: readonly ModelOpParameter[] = [
  { name: 'batch', type: 'u32', cType: 'uint32_t', doc: 'sequences in the call' },
  { name: 'seqLen', type: 'u32', cType: 'uint32_t', doc: 'tokens per sequence' },
];
const Q = '[batch * seqLen, HEADS * HEAD_SIZE]', KV = '[batch * seqLen, KV_HEADS * HEAD_SIZE]', ROWS = '[batch, HEADS, seqLen]';

/** Why this architecture's attention has no CUDA kernel, or null. */
export function attentionUnsupported(arch: Pick<Architecture, 'dim' | 'heads' | 'kvHeads'>): string | null {
  const headSize = arch.dim / arch.heads;
  if (!Number.isInteger(headSize)) return `dim ${arch.dim} is not a multiple of heads ${arch.heads}`;
  if (arch.heads % arch.kvHeads !== 0) return `heads ${arch.heads} is not a multiple of kv heads ${arch.kvHeads}`;
  if (headSize % 8 !== 0 || headSize > MAX_ATTENTION_HEAD_SIZE) return `head size ${headSize} is not a multiple of 8 up to ${MAX_ATTENTION_HEAD_SIZE}`;
  return null;
}

/** The attention kernel of an architecture: its name from numbers, its constants and its four entry points. */
export function attentionKernel(
  arch: Pick<Architecture, 'dim' | 'heads' | 'kvHeads'> & { readonly activation?: string },
  variant?: { readonly name: string; readonly tuning: AttentionTuning },
): ModelOpKernel {
  const why = attentionUnsupported(arch);
  if (why) throw new RangeError(`no CUDA attention kernel: ${why}`);
  const headSize = arch.dim / arch.heads;
  const io = attentionIoOf(arch.activation);
  const tiling = attentionTiling(headSize, variant?.tuning, io);
  const threads = (warps: number): readonly [number, number, number] => [warps * 32, 1, 1];
  const rows = (name: string, access: 'read' | 'written', doc: string) => pointer(name, access, doc, io);
  return {
    kernel: `attention_h${arch.heads}_kv${arch.kvHeads}_d${headSize}_${io}${variant ? `_${variant.name}` : ''}`,
    op: 'attention',
    template: 'ops/attention.cu.hbs',
    constants: {
      HEAD_SIZE: headSize, HEADS: arch.heads, KV_HEADS: arch.kvHeads, HEAD_PAD: tiling.headPad,
      FWD_BLOCK_Q: 16 * tiling.forwardWarps, FWD_BLOCK_K: tiling.forwardBlockKey, DQ_BLOCK_Q: 16 * tiling.dqWarps, DQ_BLOCK_K: tiling.dqBlockKey,
      DKDV_BLOCK_K: 16 * tiling.dkdvWarps, DKDV_BLOCK_Q: tiling.dkdvBlockQuery, DELTA_WARPS,
      // 1: q, k, v, dOut and out are bf16 (the runtime binds them so); 0: float32.
      IO_BF16: io === 'bf16' ? 1 : 0,
    },
    entryPoints: [
      {
        name: 'forward', symbol: 'attention_forward',
        parameters: [rows('out', 'written', Q), pointer('lse', 'written', `${ROWS} (the log-sum-exp of each query row, for the backward)`), rows('q', 'read', Q), rows('k', 'read', KV), rows('v', 'read', KV), ...SIZES],
        block: threads(tiling.forwardWarps), sharedBytes: tiling.forwardSharedBytes, grid: GRIDS['forward'],
        computes: 'out = softmax(q k^T / sqrt(hs) + causal mask) v, lse[b, h, t] = log sum_s exp(q_t . k_s / sqrt(hs))',
      },
      {
        name: 'backward_delta', symbol: 'attention_backward_delta',
        parameters: [pointer('delta', 'written', `${ROWS} (scratch)`), rows('dOut', 'read', Q), rows('out', 'read', `${Q} (the forward's)`), ...SIZES],
        block: [DELTA_WARPS * 32, 1, 1], sharedBytes: 0, grid: GRIDS['backward_delta'],
        computes: 'delta[b, h, t] = sum_d dOut[b, t, h, d] * out[b, t, h, d] (scratch for dq and dkdv)',
      },
      {
        name: 'backward_dq', symbol: 'attention_backward_dq',
        parameters: [pointer('dq', 'accumulated (+=)', Q), rows('dOut', 'read', Q), rows('q', 'read', Q), rows('k', 'read', KV), rows('v', 'read', KV), pointer('lse', 'read', ROWS), pointer('delta', 'read', ROWS), ...SIZES],
        block: threads(tiling.dqWarps), sharedBytes: tiling.dqSharedBytes, grid: GRIDS['backward_dq'],
        computes: 'dq += scale * sum_s p (dOut . v_s - delta) k_s, p = exp(q . k_s * scale - lse)',
      },
      {
        name: 'backward_dkdv', symbol: 'attention_backward_dkdv',
        parameters: [pointer('dk', 'accumulated (+=)', KV), pointer('dv', 'accumulated (+=)', KV), rows('dOut', 'read', Q), rows('q', 'read', Q), rows('k', 'read', KV), rows('v', 'read', KV), pointer('lse', 'read', ROWS), pointer('delta', 'read', ROWS), ...SIZES],
        block: threads(tiling.dkdvWarps), sharedBytes: tiling.dkdvSharedBytes, grid: GRIDS['backward_dkdv'],
        computes: 'dv += sum_(h in group, t >= s) p dOut_t; dk += scale * sum p (dOut_t . v_s - delta) q_t',
      },
    ],
  };
}

/** Each entry point's grid as the runtime computes it from batch and seqLen (documented in the header). */
export function attentionGrid(kernel: ModelOpKernel, entry: string, batch: number, seqLen: number): [number, number, number] {
  const c = kernel.constants;
  const tiles = (rows: number) => Math.ceil(seqLen / rows);
  switch (entry) {
    case 'forward':
      return [tiles(c['FWD_BLOCK_Q']!), c['HEADS']!, batch];
    case 'backward_dq':
      return [tiles(c['DQ_BLOCK_Q']!), c['HEADS']!, batch];
    case 'backward_dkdv':
      return [tiles(c['DKDV_BLOCK_K']!), c['KV_HEADS']!, batch];
    case 'backward_delta':
      return [Math.ceil((batch * seqLen * c['HEADS']!) / c['DELTA_WARPS']!), 1, 1];
    default:
      throw new RangeError(`attention has no entry point ${entry}`);
  }
}

const GRIDS: Readonly<Record<string, string>> = {
  forward: 'grid.x = ceil(seqLen / FWD_BLOCK_Q), grid.y = HEADS, grid.z = batch',
  backward_delta: 'grid.x = ceil(batch * seqLen * HEADS / DELTA_WARPS)',
  backward_dq: 'grid.x = ceil(seqLen / DQ_BLOCK_Q), grid.y = HEADS, grid.z = batch',
  backward_dkdv: 'grid.x = ceil(seqLen / DKDV_BLOCK_K), grid.y = KV_HEADS, grid.z = batch',
};

/** Where the spec came from, for the header's first lines. */
export interface SpecSource {
  readonly spec: string;
  readonly specFile: string;
}

function headerLines(kernel: ModelOpKernel, source: SpecSource): string[] {
  const c = kernel.constants;
  const lines = [
    `${kernel.kernel}.cu: generated by qalc from spec ${commentSafe(source.spec)}. Do not edit.`,
    `Regenerate: qalc compile ${shellWord(source.specFile)}`,
    ...compileCommands(`${kernel.kernel}.cu`).map((command) => `Compile: ${command}`),
    '',
    'Op: causal grouped-query self-attention, flash-attention 2 style (no T x T matrix in memory)',
    `  q, out, dq, dOut [batch * seqLen, ${c['HEADS']} * ${c['HEAD_SIZE']}], k, v, dk, dv [batch * seqLen, ${c['KV_HEADS']} * ${c['HEAD_SIZE']}], row-major;`,
    `  q, k, v, dOut, out ${c['IO_BF16'] ? 'bf16' : 'float32'}; dq, dk, dv float32`,
    `  lse, delta [batch, ${c['HEADS']}, seqLen] float32; query head h reads kv head h / ${c['HEADS']! / c['KV_HEADS']!}; query t sees keys 0..t`,
    `  scale = 1/sqrt(${c['HEAD_SIZE']}); the softmax runs in the exp2 domain (scores times scale * log2(e))`,
    '',
    'Parameters',
    `  HEAD_SIZE ${c['HEAD_SIZE']}${c['HEAD_PAD'] !== c['HEAD_SIZE'] ? ` (zero-padded to HEAD_PAD ${c['HEAD_PAD']} inside: one mma k-step is 16)` : ''}, HEADS ${c['HEADS']}, KV_HEADS ${c['KV_HEADS']}`,
    `  tiles (a warp owns 16 rows): forward FWD_BLOCK_Q ${c['FWD_BLOCK_Q']} queries a block, FWD_BLOCK_K ${c['FWD_BLOCK_K']} keys a step;`,
    `    dq DQ_BLOCK_Q ${c['DQ_BLOCK_Q']} queries, DQ_BLOCK_K ${c['DQ_BLOCK_K']} keys; dkdv DKDV_BLOCK_K ${c['DKDV_BLOCK_K']} keys a block, DKDV_BLOCK_Q ${c['DKDV_BLOCK_Q']} queries a step`,
    c['IO_BF16']
      ? '  pipeline: each loop step\'s bf16 tiles are copied by cp.async straight into one of two shared buffers during the previous step\'s products'
      : '  pipeline: each loop step\'s float32 tiles are fetched by cp.async during the previous step\'s products',
    c['IO_BF16'] ? '  rounding: q, k, v, dOut come in bf16; out is rounded to bf16 (round to nearest even) when stored;' : '  rounding: q, k, v, dOut tiles are rounded to bf16 (round to nearest even) when staged in shared memory;',
    '    p and ds are rounded to bf16 as mma operands; every product accumulates in float32 (mma.sync m16n8k16',
    '    bf16, sm_80 and later; sm_90a runs the same code), softmax (exp2 by ex2.approx), lse, delta and the += in float32;',
    '    delta reads dOut rounded to bf16, as dp does, so that ds = p (dp - delta) cancels where it should:',
    '    max-norm relative errors of a few 1e-3 against float64 (tolerance 1e-2, check_attention.py)',
    '  dynamic shared memory over 48 KiB needs CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES set to sharedBytes',
    '',
    'Entry points, in launch order: extern "C" kernel (parameters), block, dynamic shared bytes, grid',
  ];
  for (const entry of kernel.entryPoints) {
    lines.push(
      `  ${entry.name}: ${entry.symbol}(${entry.parameters.map((p) => `${p.name}: ${p.type}`).join(', ')})`,
      `    block (${entry.block.join(', ')}), ${entry.sharedBytes} bytes, ${entry.grid}`,
      `    ${entry.computes}`,
    );
  }
  return lines;
}

let template: ((context: object) => string) | undefined;

function attentionTemplate(): (context: object) => string {
  // noEscape: the output is CUDA, not HTML. strict: a field the context lacks is an error.
  template ??= Handlebars.create().compile(readFileSync(join(PROJECT_ROOT, 'templates', 'cuda', 'ops', 'attention.cu.hbs'), 'utf8'), { noEscape: true, strict: true });
  return template;
}

/** A float literal that round-trips the double's value to the nearest float. */
function floatLiteral(value: number): string {
  const text = value.toPrecision(9);
  return `${text}f`;
}

/** The .cu file of an attention kernel: deterministic, same kernel and spec, same bytes. */
export function renderAttentionKernel(kernel: ModelOpKernel, source: SpecSource): { readonly fileName: string; readonly source: string } {
  const c = kernel.constants;
  const headSize = c['HEAD_SIZE']!;
  const text = attentionTemplate()({
    headerLines: headerLines(kernel, source),
    headSize,
    heads: c['HEADS'],
    kvHeads: c['KV_HEADS'],
    headPad: c['HEAD_PAD'],
    forwardWarps: c['FWD_BLOCK_Q']! / 16,
    forwardBlockKey: c['FWD_BLOCK_K'],
    dqWarps: c['DQ_BLOCK_Q']! / 16,
    dqBlockKey: c['DQ_BLOCK_K'],
    dkdvWarps: c['DKDV_BLOCK_K']! / 16,
    dkdvBlockQuery: c['DKDV_BLOCK_Q'],
    deltaWarps: c['DELTA_WARPS'],
    ioCType: c['IO_BF16'] ? 'bf16' : 'float',
    ioBf16: c['IO_BF16'] ? 'true' : 'false',
    scale: floatLiteral(1 / Math.sqrt(headSize)),
    scaleLog2: floatLiteral(Math.LOG2E / Math.sqrt(headSize)),
  });
  return { fileName: `${kernel.kernel}.cu`, source: text };
}
