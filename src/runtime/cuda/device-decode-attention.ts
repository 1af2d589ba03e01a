// The KV cache of `qalc generate --backend cuda` and the two launches over it (the decode_attention
// model op: src/backends/cuda/model-ops/decode-attention.ts): append a token's k and v, attend one
// query over the cache. The cache is two float32 device buffers [layers, kvHeads, capacity,
// headSize] (why float32: that file's header), allocated once for the generation; q, k, v and the
// output are the decode step's host handles, resident on the device like every op's (device-arrays.ts).
import { checkDecodePosition, kvCacheLength, type DecodeAttentionShape } from '../typescript/decode-attention.ts';
import { checkLength, type Floats } from '../typescript/floats.ts';
import { dense, DeviceArrays, float32 } from './device-arrays.ts';
import type { ModelOpLauncher } from './model-op-launcher.ts';

export interface DeviceKvCache {
  readonly shape: DecodeAttentionShape;
  /** Writes k and v ([kvHeads · headSize] each, k RoPE'd) at `position` of `layer`. */
  append(k: Floats, v: Floats, layer: number, position: number): void;
  /** out [heads · headSize] = q's attention over positions 0 … length − 1 of `layer`. */
  attend(out: Floats, q: Floats, layer: number, length: number): void;
}

/** Why the compiled kernels cannot decode on the device, or null. */
export function decodeAttentionMissing(ops: Pick<ModelOpLauncher, 'has'>): string | null {
  return ops.has('decode_attention') ? null : 'the compiled kernels have no decode_attention model op (a compile folder from before it was emitted: run `qalc compile` again)';
}

export function deviceKvCache(ops: ModelOpLauncher, arrays: DeviceArrays, shape: DecodeAttentionShape): DeviceKvCache {
  const missing = decodeAttentionMissing(ops);
  if (missing !== null) throw new Error(missing);
  const kernel = ops.kernel('decode_attention');
  for (const [name, value] of [['HEADS', shape.heads], ['KV_HEADS', shape.kvHeads], ['HEAD_SIZE', shape.headSize]] as const) {
    if (kernel.constants[name] !== value) throw new RangeError(`${kernel.kernel} was compiled for ${name} = ${kernel.constants[name]}, the model has ${value}`);
  }
  const bytes = kvCacheLength(shape) * 4;
  const keyCache = arrays.allocate(bytes), valueCache = arrays.allocate(bytes);
  const kvWidth = shape.kvHeads * shape.headSize, qWidth = shape.heads * shape.headSize;
  const { capacity } = shape;
  const read = (host: Floats, name: string, length: number) => {
    checkLength(name, host, length);
    return arrays.read(float32(host, name), dense(length));
  };
  return {
    shape,
    append(k, v, layer, position) {
      checkDecodePosition(shape, layer, position);
      ops.launch('decode_attention', 'append', { keyCache, valueCache, k: read(k, 'k', kvWidth), v: read(v, 'v', kvWidth), layer, capacity, position });
      arrays.release();
    },
    attend(out, q, layer, length) {
      checkDecodePosition(shape, layer, length - 1);
      checkLength('out', out, qWidth);
      ops.launch('decode_attention', 'forward', { out: arrays.write(float32(out, 'out'), dense(qWidth)), q: read(q, 'q', qWidth), keyCache, valueCache, layer, capacity, length });
      arrays.release();
    },
  };
}
