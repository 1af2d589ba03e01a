// The decode steps of `qalc generate --backend cuda` on the device (device-decode.ts's DecodeSteps):
// the KV cache and the ops of a step that read the token or its position. Everything that changes
// from one token to the next — the token id and its position — lives in one small device buffer,
// the step buffer (uint32 [token, position]), written by one 8-byte host→device copy before each
// step; the kernels read it there (the embedding's `tokens`, RoPE's and decode_attention's
// `step`), so a step's launches are the same every token and the step can be captured once as a
// CUDA graph and replayed (DeviceGraphs, cuda.ts). The cache is two float32 device buffers
// [layers, kvHeads, capacity, headSize] (why float32: the decode_attention kernel's header), the
// RoPE tables one [capacity, headSize / 2] pair, and the adapters that generation never changes
// one device copy each (keep): all allocated once for the generation.
import { ropeTables } from '../typescript/rope.ts';
import { checkDecodePosition, kvCacheLength, type DecodeAttentionShape } from '../typescript/decode-attention.ts';
import { checkTokens } from '../typescript/embedding.ts';
import { checkLength, type Floats } from '../typescript/floats.ts';
import type { ActivationBoundary } from './activation-boundary.ts';
import type { CudaDevicePort, DeviceBuffer } from './cuda.ts';
import { dense, DeviceArrays, float32 } from './device-arrays.ts';
import type { ModelOpLauncher } from './model-op-launcher.ts';
import type { DecodeSteps, StepGraph } from './device-decode.ts';

/** Why the compiled kernels cannot decode on the device, or null. */
export function decodeAttentionMissing(ops: Pick<ModelOpLauncher, 'has' | 'hasEntry'>): string | null {
  if (!ops.has('decode_attention')) return 'the compiled kernels have no decode_attention model op (a compile folder from before it was emitted: run `qalc compile` again)';
  if (!ops.hasEntry('rope', 'decodeForward')) return 'the compiled kernels\' rope has no decode entry points (a compile folder from before the decode step read its position from the device: run `qalc compile` again)';
  return null;
}

/** What the device decode steps use of the device ops (device-ops.ts builds it). */
export interface DecodeStepDevice {
  readonly driver: CudaDevicePort;
  readonly ops: ModelOpLauncher;
  readonly arrays: DeviceArrays;
  readonly boundary: ActivationBoundary;
  /** The embedding gather's entry point and its table (in the activation type where the kernel reads it so). */
  embeddingTable(table: Floats, vocab: number, channels: number): { readonly entry: string; readonly table: DeviceBuffer };
}

/** Floats a kept array's start is aligned to (16 bytes, as packed-parameters.ts aligns the optimizer's). */
const KEEP_ALIGNMENT = 4;

export function deviceDecodeSteps(device: DecodeStepDevice, shape: DecodeAttentionShape, ropeTheta: number): DecodeSteps {
  const { driver, ops, arrays, boundary } = device;
  const missing = decodeAttentionMissing(ops);
  if (missing !== null) throw new Error(missing);
  const kernel = ops.kernel('decode_attention');
  for (const [name, value] of [['HEADS', shape.heads], ['KV_HEADS', shape.kvHeads], ['HEAD_SIZE', shape.headSize]] as const) {
    if (kernel.constants[name] !== value) throw new RangeError(`${kernel.kernel} was compiled for ${name} = ${kernel.constants[name]}, the model has ${value}`);
  }
  const ropeHeadSize = ops.kernel('rope').constants['HEAD_SIZE'];
  if (ropeHeadSize !== shape.headSize) throw new RangeError(`the rope kernel was compiled for head size ${ropeHeadSize}, the model has ${shape.headSize}`);
  // run.c's tables, as the host's (hostDecodeSteps), one row a position of the cache.
  const rope = ropeTables(shape.headSize, shape.capacity, ropeTheta);
  const bytes = kvCacheLength(shape) * 4;
  const keyCache = arrays.allocate(bytes), valueCache = arrays.allocate(bytes);
  const step = arrays.allocate(8);
  // The forward's scratch: each split's partial result, and each head's arrival counter, which
  // the kernel leaves at 0 after every launch (so one zero-fill here serves the generation).
  const splits = kernel.constants['SPLITS'] ?? 1;
  const partials = arrays.allocate(shape.heads * splits * (shape.headSize + 2) * 4);
  const arrivals = arrays.allocate(shape.heads * 4);
  arrivals.upload(new Uint32Array(shape.heads));
  const stepValues = new Uint32Array(2);
  const cos = arrays.frozen(rope.cos, 'f32', () => rope.cos), sin = arrays.frozen(rope.sin, 'f32', () => rope.sin);
  const kvWidth = shape.kvHeads * shape.headSize, qWidth = shape.heads * shape.headSize;
  const { capacity } = shape;
  let position = -1;
  const read = (host: Floats, name: string, length: number) => {
    checkLength(name, host, length);
    return arrays.read(float32(host, name), dense(length));
  };
  const begun = () => {
    if (position < 0) throw new Error('a decode step\'s op before begin(token, position)');
  };
  const graphs = driver.graphs;
  return {
    shape,
    begin(token, at) {
      checkDecodePosition(shape, 0, at);
      if (!(Number.isInteger(token) && token >= 0 && token < 2 ** 31)) throw new RangeError(`token ${token} is no token id`);
      stepValues[0] = token;
      stepValues[1] = at;
      step.upload(stepValues);
      position = at;
    },
    keep(parts) {
      // Back to back in one buffer, in order, so that parts one binding packs (a layer's A|B) are
      // one span of it (DeviceArrays.placedSpan): bound where they are, no packing copy a call.
      const hosts = parts.map((group) => group.map((part) => float32(part, 'a kept array')));
      const offsets: number[] = [];
      let end = 0;
      for (const group of hosts) {
        end = Math.ceil(end / KEEP_ALIGNMENT) * KEEP_ALIGNMENT;
        for (const host of group) {
          offsets.push(end * 4);
          end += host.length;
        }
      }
      if (end === 0) return;
      const storage = arrays.allocate(end * 4);
      let i = 0;
      for (const group of hosts) for (const host of group) arrays.place(host, storage, offsets[i++]!);
      // Uploaded once: from now on their device copies are their newest values.
      for (const group of hosts) for (const host of group) arrays.update(host);
      arrays.release();
    },
    embed(out, table, channels) {
      begun();
      const embedding = ops.kernel('embedding');
      if (embedding.constants['CHANNELS'] !== channels) throw new RangeError(`${embedding.kernel} was compiled for CHANNELS = ${embedding.constants['CHANNELS']}, the call has channels ${channels}`);
      checkLength('embedding output', out, channels);
      const vocab = table.length / channels;
      checkTokens(stepValues, 1, vocab);
      const gather = device.embeddingTable(table, vocab, channels);
      ops.launch('embedding', gather.entry, { out: arrays.write(float32(out, 'out'), dense(channels)), tokens: step, table: gather.table, rows: 1 });
      arrays.release();
    },
    rope(q, qWidth, k, kWidth) {
      begun();
      for (const [name, x, width] of [['q', q, qWidth], ['k', k, kWidth]] as const) {
        if (width % rope.headSize !== 0) throw new RangeError(`${name} width ${width} is not a multiple of the head size ${rope.headSize}`);
        checkLength(name, x, width);
      }
      const queries = float32(q, 'q'), keys = float32(k, 'k');
      // q and k as their linears wrote them, turned into float32 rows for attention: one launch
      // for both where the kernel has it (a manifest from before has not), else one each.
      const qFromLinear = boundary.resident(queries, qWidth, 'rope', 'decodeFromActivation');
      const kFromLinear = boundary.resident(keys, kWidth, 'rope', 'decodeFromActivation');
      if (qFromLinear !== undefined && kFromLinear !== undefined && ops.hasEntry('rope', 'decodePairFromActivation')) {
        const qSource = arrays.read(queries, qFromLinear), kSource = arrays.read(keys, kFromLinear);
        ops.launch('rope', 'decodePairFromActivation', {
          out: arrays.rewrite(queries, dense(qWidth)), x: qSource, keyOut: arrays.rewrite(keys, dense(kWidth)), key: kSource, cos, sin, step, width: qWidth, keyWidth: kWidth,
        });
        arrays.release();
        return;
      }
      for (const [values, width, fromLinear] of [[queries, qWidth, qFromLinear], [keys, kWidth, kFromLinear]] as const) {
        if (fromLinear !== undefined) {
          const source = arrays.read(values, fromLinear);
          ops.launch('rope', 'decodeFromActivation', { out: arrays.rewrite(values, dense(width)), x: source, cos, sin, step, width });
        } else {
          ops.launch('rope', 'decodeForward', { x: arrays.update(values), cos, sin, step, width });
        }
        arrays.release();
      }
    },
    append(k, v, layer) {
      begun();
      checkDecodePosition(shape, layer, position);
      ops.launch('decode_attention', 'append', { keyCache, valueCache, k: read(k, 'k', kvWidth), v: read(v, 'v', kvWidth), step, layer, capacity });
      arrays.release();
    },
    attend(out, q, layer) {
      begun();
      checkDecodePosition(shape, layer, position);
      checkLength('out', out, qWidth);
      ops.launch('decode_attention', 'forward', { out: arrays.write(float32(out, 'out'), dense(qWidth)), q: read(q, 'q', qWidth), keyCache, valueCache, partials, arrivals, step, layer, capacity });
      arrays.release();
    },
    allocatedBytes: () => arrays.allocatedBytes,
    ...(graphs === undefined ? {} : {
      capture(body: () => void, outputs: readonly Floats[]): StepGraph {
        graphs.begin();
        try {
          body();
        } catch (error) {
          graphs.abort();
          arrays.release();
          throw error;
        }
        const graph = graphs.end();
        // Where the step left its outputs: what every replay writes again.
        const targets = outputs.map((output) => {
          const host = float32(output, 'a step output');
          const found = arrays.residentOf(host);
          if (found === undefined || found.encoding !== 'f32' || found.stride !== found.width || found.rows * found.width < host.length) {
            graph.destroy();
            throw new Error('a captured decode step\'s output is not float32 rows on the device');
          }
          return { host, buffer: found.buffer };
        });
        return {
          nodes: graph.nodes,
          replay() {
            graph.launch();
            for (const { host, buffer } of targets) buffer.download(host);
          },
          destroy: () => graph.destroy(),
        };
      },
    }),
  };
}
