// Attention of one new token over the KV cache on CUDA, for `qalc generate --backend cuda`
// (src/runtime/cuda/device-decode.ts): exactly src/runtime/typescript/decode-attention.ts.
//
// The cache is float32 [layers, kvHeads, capacity, headSize], keys and values apart, on the
// device for the whole generation. float32 rather than bf16: the keys and values are what the
// training attention kernel reads (float32 rows after RoPE), so the decode path computes what the
// cpu backend's forward computes, to the linear kernels' 16-bit rounding only; at the 7B shape a
// 256-token generation reads at most 268 MB of cache a token beside the 3.5 GB of INT4 weights
// (bf16 would halve that: speed work, not correctness).
//
// The token's position is read from the decode step's buffer (`step`: uint32 [token, position],
// written by the host before the step), not passed as a parameter: a step's launches are then
// the same every token, so `qalc generate` captures them once in a CUDA graph and replays them
// (src/runtime/cuda/device-decode.ts); forward attends positions 0 … position.
//
// append writes the token's RoPE'd k and v at its position (one thread per element). forward is
// split over the cached positions (flash-decoding): block (head, split) takes the split's share
// of the first `length` positions — SPLITS splits a head, so that a 32-head model fills the GPU
// at any length; one block a head, as before, left 100 of the H200's 132 multiprocessors idle
// and took 0.052 ms for 136 positions (generate-bench-3fb154f) — in tiles of KEY_TILE keys: each
// warp scores its share of a tile (lanes split the head, a fixed-order warp sum), warp 0 turns the
// scores into probabilities against the split's running maximum (online softmax), every thread
// rescales its accumulator and adds p · V for its dimension and its share of the tile's keys. A
// split writes (max, sum, p · V) to `partials`; the last split of a head to arrive (an atomic
// counter in `arrivals`, after a fence) combines the head's splits in split order, writes out and
// sets the counter back to 0, so every launch (a replayed graph's too) finds it at 0 — the runtime
// zero-fills it once. Causal by construction: the cache holds no later position. Deterministic:
// every sum has a fixed order, whichever split arrives last.
import type { ModelOpKernel } from '../model-ops.ts';
import { decodeStepInput, elementwiseGrid, ELEMENTWISE_THREADS, entryPoint, input, output, pointer, u32, type ModelShapes } from './shapes.ts';

/** Keys scored a step: shared memory for their scores, and the tile a test's cache must outgrow. */
export const DECODE_KEY_TILE = 32;
/**
 * Splits of the cached positions a head: about 256 blocks in all (two a multiprocessor on the
 * H200's 132), at most 32 (a split keeps at least a tile's worth of work at long lengths).
 */
export function decodeAttentionSplits(heads: number): number {
  return Math.max(1, Math.min(32, Math.ceil(256 / heads)));
}

/** The head sizes the kernel takes: even (RoPE's pairs), up to a block of threads. */
export const MAX_DECODE_HEAD_SIZE = 256;

/** Why the architecture has no decode attention kernel, or null. */
export function decodeAttentionUnsupported(shapes: Pick<ModelShapes, 'heads' | 'kvHeads' | 'headSize'>): string | null {
  const { heads, kvHeads, headSize } = shapes;
  if (!Number.isInteger(headSize) || headSize % 2 !== 0 || headSize > MAX_DECODE_HEAD_SIZE) return `head size ${headSize} is not even up to ${MAX_DECODE_HEAD_SIZE}`;
  if (heads % kvHeads !== 0) return `heads ${heads} is not a multiple of kv heads ${kvHeads}`;
  return null;
}

/** A block's threads: GROUPS copies of the head's dimensions (each a share of a tile's keys), whole warps. */
export function decodeAttentionThreads(headSize: number): { readonly groups: number; readonly threads: number } {
  const groups = Math.max(1, Math.floor(128 / headSize));
  return { groups, threads: Math.ceil((groups * headSize) / 32) * 32 };
}

export function decodeAttentionKernel(shapes: ModelShapes): ModelOpKernel {
  const { heads, kvHeads, headSize } = shapes;
  const kernel = `decode_attention_h${heads}_kv${kvHeads}_d${headSize}`;
  const { groups, threads } = decodeAttentionThreads(headSize);
  const splits = decodeAttentionSplits(heads);
  const kvWidth = kvHeads * headSize;
  const cache = `[layers, ${kvHeads}, capacity, ${headSize}]`;
  const place = [
    decodeStepInput(),
    u32('layer', 'the block whose cache this is'), u32('capacity', 'positions the cache holds per layer and head'),
  ];
  return {
    kernel, op: 'decode_attention', template: 'ops/decode-attention.cu.hbs',
    constants: {
      HEADS: heads, KV_HEADS: kvHeads, HEAD_SIZE: headSize, GROUP_SIZE: heads / kvHeads, KEY_TILE: DECODE_KEY_TILE,
      DIM_GROUPS: groups, THREADS: threads, SPLITS: splits, APPEND_THREADS: ELEMENTWISE_THREADS, SCALE: 1 / Math.sqrt(headSize),
    },
    entryPoints: [
      entryPoint(kernel, 'append', {
        parameters: [
          output('keyCache', cache), output('valueCache', cache), input('k', `[${kvWidth}] after RoPE`), input('v', `[${kvWidth}]`),
          ...place,
        ],
        block: [ELEMENTWISE_THREADS, 1, 1], grid: elementwiseGrid(String(kvWidth)),
        computes: 'position = step[1]: keyCache[layer, h, position, :] = k[h, :], valueCache[layer, h, position, :] = v[h, :]',
      }),
      entryPoint(kernel, 'forward', {
        parameters: [
          output('out', `[${heads * headSize}]`), input('q', `[${heads * headSize}] after RoPE`), input('keyCache', cache), input('valueCache', cache),
          output('partials', `[${heads}, ${splits}, ${headSize + 2}] scratch: each split's max, sum of exp and p · V`),
          pointer('arrivals', 'uint32_t*', `uint32 [${heads}] scratch: splits of each head done; 0 before a launch, left 0 after it`),
          ...place,
        ],
        block: [threads, 1, 1], grid: `grid.x = ${heads}, grid.y = ${splits}`,
        computes: `length = step[1] + 1: out[h] = sum_{t < length} softmax_t(q[h] . K[layer, h / ${heads / kvHeads}, t] * SCALE) V[layer, h / ${heads / kvHeads}, t]`,
      }),
    ],
  };
}
