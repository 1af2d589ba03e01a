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
// one block per query head: the block walks the cache's first `length` positions in tiles of
// KEY_TILE keys — each warp scores its share of a tile (lanes split the head, a fixed-order warp
// sum), then every thread rescales its running sum and accumulator by the tile's new maximum
// (online softmax) and adds p · V for its dimension and its share of the tile's keys; the shares
// are summed at the end in a fixed order. Causal by construction: the cache holds no later
// position. Deterministic: every sum has a fixed order.
import type { ModelOpKernel } from '../model-ops.ts';
import { decodeStepInput, elementwiseGrid, ELEMENTWISE_THREADS, entryPoint, input, output, u32, type ModelShapes } from './shapes.ts';

/** Keys scored a step: shared memory for their scores, and the tile a test's cache must outgrow. */
export const DECODE_KEY_TILE = 32;
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
      DIM_GROUPS: groups, THREADS: threads, APPEND_THREADS: ELEMENTWISE_THREADS, SCALE: 1 / Math.sqrt(headSize),
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
          ...place,
        ],
        block: [threads, 1, 1], grid: `grid.x = ${heads}`,
        computes: `length = step[1] + 1: out[h] = sum_{t < length} softmax_t(q[h] . K[layer, h / ${heads / kvHeads}, t] * SCALE) V[layer, h / ${heads / kvHeads}, t]`,
      }),
    ],
  };
}
