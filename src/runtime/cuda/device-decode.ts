// One token at a time through a spec's quantized model with its adapters, on the cuda backend's
// device ops: what `qalc generate SPEC --backend cuda` runs (src/model/generate.ts drives it
// and samples, as it drives the cpu backend's LlamaForward). Per token, on the device:
//   embedding row → per block: rmsnorm → q, k, v (the compiled linear kernels' decode role at
//   one row: y = x·Ŵ + σ·(pool(x)·A)·B) → RoPE at the position → k, v appended to the KV cache →
//   the query's attention over the cache (decode_attention) → o → residual → rmsnorm → gate, up
//   → SwiGLU → down → residual; final rmsnorm → lm_head (cuBLAS where it loads) → the logits back
//   to the host.
// The prompt goes through the same one-token step (generate() forces its tokens): a first
// version; one T = prompt-length forward filling the cache is speed work.
//
// Written over the TrainingOps table and a KV cache, so the same code runs on the TypeScript
// reference ops and a host cache (the test compares the two) — the ops answer synchronously on
// both (the cuda device ops do: they launch and return), which `settled` checks.
import type { Architecture } from '../../model/architecture.ts';
import { headDim } from '../../model/architecture.ts';
import type { DecodeModel } from '../../model/llama-forward.ts';
import type { TrainableCheckpoint, QaLoraModel } from '../../train/qalora-model.ts';
import { PROJECTIONS, type ProjectionName } from '../../train/qalora-spec.ts';
import type { TrainingOps } from '../ops.ts';
import type { DecodeAttentionShape } from '../typescript/decode-attention.ts';
import { inFeaturesOf, type AdapterActivations } from '../typescript/qalora-linear.ts';
import { ropeTables, type RopeTables } from '../typescript/rope.ts';
import type { Floats } from '../typescript/floats.ts';

/** The cache a decoder appends to and attends over (device-decode-attention.ts, or the host reference). */
export interface KvCache {
  readonly shape: DecodeAttentionShape;
  append(k: Floats, v: Floats, layer: number, position: number): void;
  attend(out: Floats, q: Floats, layer: number, length: number): void;
}

function settled<T>(result: T | Promise<T>): T {
  if (result instanceof Promise) throw new Error('the decode path needs ops that answer synchronously (the cuda device ops and the host ops do)');
  return result;
}

/** The KV cache's shape for a model generating at most `capacity` positions. */
export function kvCacheShape(arch: Architecture, capacity: number): DecodeAttentionShape {
  if (!(Number.isInteger(capacity) && capacity >= 1 && capacity <= arch.context)) throw new RangeError(`a KV cache of ${capacity} positions: the model's context is ${arch.context}`);
  return { layers: arch.layers, heads: arch.heads, kvHeads: arch.kvHeads, headSize: headDim(arch), capacity };
}

export class OpsDecoder implements DecodeModel {
  readonly arch: Architecture;
  private readonly rope: RopeTables;
  /** Per position, its one row of the RoPE tables: the same arrays every call, so a device keeps each one after its first upload. */
  private readonly ropeAt: RopeTables[] = [];
  private readonly x: Float32Array;
  private readonly afterAttention: Float32Array;
  private readonly norm: Float32Array;
  private readonly rstd: Float32Array;
  private readonly q: Float32Array;
  private readonly k: Float32Array;
  private readonly v: Float32Array;
  private readonly attention: Float32Array;
  private readonly scratch: Float32Array;
  private readonly gate: Float32Array;
  private readonly up: Float32Array;
  private readonly hidden: Float32Array;
  private readonly logits: Float32Array;
  /** Each adapter's u and v of the one row (the linear kernels write them; nothing reads them). */
  private readonly saved: Record<ProjectionName, AdapterActivations | undefined>[];

  constructor(private readonly model: QaLoraModel, private readonly weights: TrainableCheckpoint, private readonly ops: TrainingOps, private readonly cache: KvCache) {
    const arch = model.arch;
    this.arch = arch;
    const { dim, hiddenDim, vocab } = arch;
    const kvDim = headDim(arch) * arch.kvHeads;
    const expected = kvCacheShape(arch, cache.shape.capacity);
    if (JSON.stringify(expected) !== JSON.stringify(cache.shape)) throw new RangeError(`the KV cache is ${JSON.stringify(cache.shape)}, the model needs ${JSON.stringify(expected)}`);
    this.rope = ropeTables(headDim(arch), cache.shape.capacity, arch.ropeTheta);
    const f = (n: number) => new Float32Array(n);
    [this.x, this.afterAttention, this.norm, this.q, this.attention, this.scratch] = [f(dim), f(dim), f(dim), f(dim), f(dim), f(dim)];
    [this.k, this.v, this.rstd] = [f(kvDim), f(kvDim), f(1)];
    [this.gate, this.up, this.hidden, this.logits] = [f(hiddenDim), f(hiddenDim), f(hiddenDim), f(vocab)];
    this.saved = model.blocks.map((block) => {
      const saved = {} as Record<ProjectionName, AdapterActivations | undefined>;
      for (const p of PROJECTIONS) {
        const { layer } = block[p];
        const adapter = layer.adapter;
        const K = inFeaturesOf(layer.base);
        if (K !== block[p].inFeatures) throw new RangeError(`${block[p].name}: pad = zero (its inputs padded to ${K}) is not in the decode path`);
        saved[p] = adapter === null ? undefined : { u: f(K / adapter.groupSize), v: f(adapter.rank), mask: undefined };
      }
      return saved;
    });
  }

  private ropeTablesAt(pos: number): RopeTables {
    let tables = this.ropeAt[pos];
    if (tables === undefined) {
      const pairs = this.rope.headSize / 2;
      const row = (table: Float32Array) => table.slice(pos * pairs, (pos + 1) * pairs);
      tables = { headSize: this.rope.headSize, positions: 1, theta: this.rope.theta, cos: row(this.rope.cos), sin: row(this.rope.sin) };
      this.ropeAt[pos] = tables;
    }
    return tables;
  }

  forward(token: number, pos: number): Float32Array {
    const { arch, ops, cache, weights, x, afterAttention, norm, rstd, q, k, v, attention, scratch, gate, up, hidden, logits } = this;
    const { dim: C, hiddenDim, vocab, rmsNormEps: eps } = arch;
    if (!(Number.isInteger(token) && token >= 0 && token < vocab)) throw new RangeError(`token ${token} is outside the vocabulary of ${vocab}`);
    if (!(Number.isInteger(pos) && pos >= 0 && pos < cache.shape.capacity)) throw new RangeError(`position ${pos} is outside the KV cache's ${cache.shape.capacity} positions`);
    const kvDim = k.length;
    const rope = this.ropeTablesAt(pos);
    settled(ops.embeddingForward(x, [token], weights.tokenEmbedding.data, 1, C));
    for (let l = 0; l < arch.layers; l++) {
      const w = weights.layers[l]!;
      const block = this.model.blocks[l]!;
      const saved = this.saved[l]!;
      const linear = (p: ProjectionName, y: Float32Array, input: Float32Array) => settled(ops.qaloraLinearForward(y, input, 1, block[p].layer, saved[p]));
      settled(ops.rmsnormForward(norm, rstd, x, w.rmsAtt.data, 1, C, eps));
      linear('q', q, norm);
      linear('k', k, norm);
      linear('v', v, norm);
      settled(ops.ropeForward(q, rope, 1, 1, C));
      settled(ops.ropeForward(k, rope, 1, 1, kvDim));
      cache.append(k, v, l, pos);
      cache.attend(attention, q, l, pos + 1);
      linear('o', scratch, attention);
      settled(ops.residualAdd(afterAttention, x, scratch, C));
      settled(ops.rmsnormForward(norm, rstd, afterAttention, w.rmsFfn.data, 1, C, eps));
      linear('gate', gate, norm);
      linear('up', up, norm);
      settled(ops.swigluForward(hidden, gate, up, hiddenDim));
      linear('down', scratch, hidden);
      settled(ops.residualAdd(x, afterAttention, scratch, C));
    }
    settled(ops.rmsnormForward(norm, rstd, x, weights.rmsFinal.data, 1, C, eps));
    settled(ops.lmHeadForward(logits, norm, weights.classifier.data, 1, C, vocab));
    settled(ops.syncToHost([logits]));
    return logits;
  }
}
