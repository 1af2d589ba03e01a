// Reads a whole llama2.c legacy (version 0) checkpoint into named float32 tensors.
//
// After the 28-byte header (llama2c-header.ts) the file holds little-endian float32 weights,
// grouped by kind with all layers of one kind together, in this order:
//   token_embedding [vocab, dim]
//   rms_att [layers, dim], wq [layers, dim, dim], wk [layers, kvDim, dim], wv [layers, kvDim, dim],
//   wo [layers, dim, dim], rms_ffn [layers, dim], w1 [layers, hidden, dim], w2 [layers, dim, hidden],
//   w3 [layers, hidden, dim], rms_final [dim],
//   freq_cis_real [seq_len, head/2], freq_cis_imag [seq_len, head/2]  (RoPE tables; run.c ignores
//   them and so do we), wcls [vocab, dim] only when the header's vocab_size is negative.
//
// Matrices are stored as [out_features, in_features], row-major: y[i] = Σ_j W[i*in + j] · x[j]
// (run.c's matmul, and the layout of a PyTorch nn.Linear weight). Every shape below is [out, in].
import { readFileSync } from 'node:fs';
import type { Architecture } from './architecture.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import { headDim, oddHeadSize } from './architecture.ts';
import { systemErrorReason } from '../system-error.ts';
import { firstNonFinite, indexIn } from './finite.ts';
import { CheckpointError, LLAMA2C_HEADER_BYTES, llama2cWeightCount, parseLlama2cHeader } from './llama2c-header.ts';

export { CheckpointError } from './llama2c-header.ts';

export interface Tensor {
  /** llama2.c name, per-layer tensors prefixed `layers.<i>.` (e.g. `layers.3.wq`). */
  readonly name: string;
  /** Matrices are [out, in]; vectors [n]. */
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** One transformer block. Each matrix is reachable by its llama2.c name and its LLaMA projection name. */
export interface LayerWeights {
  readonly rmsAtt: Tensor;
  readonly wq: Tensor;
  readonly wk: Tensor;
  readonly wv: Tensor;
  readonly wo: Tensor;
  readonly rmsFfn: Tensor;
  readonly w1: Tensor;
  readonly w2: Tensor;
  readonly w3: Tensor;
  /** Aliases in LLaMA projection names: q=wq, k=wk, v=wv, o=wo, gate=w1, down=w2, up=w3. */
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly o: Tensor;
  readonly gate: Tensor;
  readonly down: Tensor;
  readonly up: Tensor;
}

export interface Llama2cCheckpoint {
  readonly path: string;
  readonly arch: Architecture;
  readonly tokenEmbedding: Tensor;
  readonly layers: readonly LayerWeights[];
  readonly rmsFinal: Tensor;
  /** The output projection: `wcls` when stored, otherwise the token embedding itself (tied). */
  readonly classifier: Tensor;
  /** Every tensor read, by name, in file order (the RoPE tables excluded). */
  readonly tensors: ReadonlyMap<string, Tensor>;
  /**
   * Projections stored already quantized (a GPTQ checkpoint), or quantized by GPTQ at load time,
   * by qalc's name (`layers.0.q`): the frozen base as it is, never quantized again. Their entries
   * in `layers` hold the dequantized weights, for inference.
   */
  readonly quantized?: ReadonlyMap<string, QuantizedWeight>;
}

/** A run of the file: `count` stacked tensors of one kind (one per layer, or a single one). */
interface Segment {
  readonly name: string;
  readonly shape: readonly number[];
  readonly count: number;
  readonly perLayer: boolean;
  readonly skip?: boolean;
}

/** The file's layout, in order, for an architecture. */
export function llama2cLayout(arch: Architecture): Segment[] {
  const { dim, hiddenDim, layers, vocab, context } = arch;
  const kvDim = headDim(arch) * arch.kvHeads;
  const half = headDim(arch) / 2;
  const layer = (name: string, shape: number[]): Segment => ({ name, shape, count: layers, perLayer: true });
  const single = (name: string, shape: number[], skip = false): Segment => ({ name, shape, count: 1, perLayer: false, skip });
  const segments: Segment[] = [
    single('token_embedding', [vocab, dim]),
    layer('rms_att', [dim]),
    layer('wq', [dim, dim]),
    layer('wk', [kvDim, dim]),
    layer('wv', [kvDim, dim]),
    layer('wo', [dim, dim]),
    layer('rms_ffn', [dim]),
    layer('w1', [hiddenDim, dim]),
    layer('w2', [dim, hiddenDim]),
    layer('w3', [hiddenDim, dim]),
    single('rms_final', [dim]),
    single('freq_cis_real', [context, half], true),
    single('freq_cis_imag', [context, half], true),
  ];
  if (!arch.tiedEmbeddings) segments.push(single('wcls', [vocab, dim]));
  return segments;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function readLlama2cCheckpoint(path: string): Llama2cCheckpoint {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new CheckpointError(path, `cannot read the checkpoint: ${systemErrorReason(e)}`);
  }
  return parseLlama2cCheckpoint(bytes, path);
}

/** Parses checkpoint bytes; `path` only names the file in errors. */
export function parseLlama2cCheckpoint(bytes: Uint8Array, path: string): Llama2cCheckpoint {
  const arch = parseLlama2cHeader(bytes, path);
  const odd = oddHeadSize(arch, { dim: 'dim', heads: 'n_heads' });
  if (odd) throw new CheckpointError(path, `the ${odd}`);
  const layout = llama2cLayout(arch);
  const layoutFloats = layout.reduce((n, s) => n + s.count * size(s.shape), 0);
  if (layoutFloats !== llama2cWeightCount(arch)) {
    throw new Error(`internal: llama2.c layout holds ${layoutFloats} floats, llama2cWeightCount says ${llama2cWeightCount(arch)}`);
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tensors = new Map<string, Tensor>();
  let offset = LLAMA2C_HEADER_BYTES;
  for (const segment of layout) {
    const n = size(segment.shape);
    for (let i = 0; i < segment.count; i++) {
      const name = segment.perLayer ? `layers.${i}.${segment.name}` : segment.name;
      const end = offset + 4 * n;
      if (end > bytes.byteLength) {
        const have = Math.max(0, Math.floor((bytes.byteLength - offset) / 4));
        throw new CheckpointError(path,
          `truncated llama2.c checkpoint: tensor ${name} [${segment.shape.join(', ')}] at byte ${offset} needs ${n} floats, ` +
          `the file ends after ${have} (${bytes.byteLength} bytes, expected ${LLAMA2C_HEADER_BYTES + 4 * layoutFloats})`);
      }
      if (!segment.skip) {
        // DataView rather than a Float32Array view: the file is little-endian whatever the host is,
        // and a Buffer's offset need not be 4-aligned.
        const data = new Float32Array(n);
        for (let j = 0; j < n; j++) data[j] = view.getFloat32(offset + 4 * j, true);
        const bad = firstNonFinite(data);
        if (bad >= 0) {
          throw new CheckpointError(path, `tensor ${name} [${segment.shape.join(', ')}] holds ${data[bad]} at [${indexIn(segment.shape, bad).join(', ')}]: ` +
            'the checkpoint is damaged, or was saved from a run that diverged');
        }
        tensors.set(name, { name, shape: segment.shape, data });
      }
      offset = end;
    }
  }
  if (offset !== bytes.byteLength) {
    throw new CheckpointError(path, `not a llama2.c checkpoint for this header: ${bytes.byteLength - offset} bytes after the last tensor`);
  }

  const get = (name: string) => tensors.get(name)!;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < arch.layers; l++) {
    const t = (name: string) => get(`layers.${l}.${name}`);
    const [wq, wk, wv, wo, w1, w2, w3] = ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'].map(t);
    layers.push({
      rmsAtt: t('rms_att'), wq, wk, wv, wo, rmsFfn: t('rms_ffn'), w1, w2, w3,
      q: wq, k: wk, v: wv, o: wo, gate: w1, down: w2, up: w3,
    });
  }
  const tokenEmbedding = get('token_embedding');
  return {
    path, arch, tokenEmbedding, layers,
    rmsFinal: get('rms_final'),
    classifier: arch.tiedEmbeddings ? tokenEmbedding : get('wcls'),
    tensors,
  };
}
