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
// What changes from token to token — the token and its position — the step reads through its
// DecodeSteps (begin() sets them; on the device they sit in a small buffer the kernels read:
// device-decode-steps.ts), so every launch of a step is the same every token. Where the device
// has CUDA graphs (and QALC_CUDA_GRAPH is not 0), the step is captured once, after two steps in
// a row allocated no device memory, and replayed every token after: one graph launch and one copy
// of the logits a token instead of ~26 launches a block from JavaScript.
//
// Written over the TrainingOps table and DecodeSteps, so the same code runs on the TypeScript
// reference ops and a host cache (hostDecodeSteps; the test compares the two) — the ops answer
// synchronously on both (the cuda device ops do: they launch and return), which `settled` checks.
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

/** The cache a decoder appends to and attends over, with explicit positions (the host reference: hostKvCache). */
export interface KvCache {
  readonly shape: DecodeAttentionShape;
  append(k: Floats, v: Floats, layer: number, position: number): void;
  attend(out: Floats, q: Floats, layer: number, length: number): void;
}

/**
 * Where a decode step reads what changes from one token to the next — the token and its
 * position — and the ops that read them: begin() sets them (on the device, one 8-byte copy into
 * the step buffer: device-decode-steps.ts), the others read them, so that every other argument
 * of a step is the same every token and a device can replay the step as a CUDA graph.
 */
export interface DecodeSteps {
  readonly shape: DecodeAttentionShape;
  /** The token and position the next step's ops read. */
  begin(token: number, position: number): void;
  /**
   * Arrays the steps read that never change during the generation (the adapters' A and B), in
   * groups that one binding packs back to back: on a device, one copy each, uploaded now.
   */
  keep(parts: readonly (readonly Floats[])[]): void;
  /** out [channels] = the step's token's row of `table`. */
  embed(out: Floats, table: Floats, channels: number): void;
  /** q [qWidth] and k [kWidth] (whole heads) turned by RoPE at the step's position, in place. */
  rope(q: Floats, qWidth: number, k: Floats, kWidth: number): void;
  /** k and v ([kvHeads · headSize] each, k RoPE'd) into `layer`'s cache at the step's position. */
  append(k: Floats, v: Floats, layer: number): void;
  /** out [heads · headSize] = q's attention over `layer`'s positions 0 … the step's. */
  attend(out: Floats, q: Floats, layer: number): void;
  /** Device memory allocated so far (bytes): a step that allocated none is settled enough to capture. */
  allocatedBytes(): number;
  /**
   * Where the device has CUDA graphs: runs nothing, records `body` (one step's ops, after
   * begin()) as a graph whose replay() runs it again and copies `outputs` back to their host
   * arrays. The recording has not run: replay() once for this step.
   */
  readonly capture?: (body: () => void, outputs: readonly Floats[]) => StepGraph;
}

export interface StepGraph {
  /** Device calls in the graph. */
  readonly nodes: number;
  /** The recorded step on the current begin()'s token and position, its outputs copied back. */
  replay(): void;
  destroy(): void;
}

function settled<T>(result: T | Promise<T>): T {
  if (result instanceof Promise) throw new Error('the decode path needs ops that answer synchronously (the cuda device ops and the host ops do)');
  return result;
}

/** DecodeSteps over host ops (the TypeScript reference, the cpu backend) and a host cache: the reference the device's steps are tested against. */
export function hostDecodeSteps(ops: TrainingOps, cache: KvCache, ropeTheta: number): DecodeSteps {
  const { shape } = cache;
  const rope = ropeTables(shape.headSize, shape.capacity, ropeTheta);
  /** Per position, its one row of the RoPE tables (made once each). */
  const ropeAt: RopeTables[] = [];
  const tablesAt = (pos: number): RopeTables => {
    let tables = ropeAt[pos];
    if (tables === undefined) {
      const pairs = rope.headSize / 2;
      const row = (table: Float32Array) => table.slice(pos * pairs, (pos + 1) * pairs);
      ropeAt[pos] = tables = { headSize: rope.headSize, positions: 1, theta: rope.theta, cos: row(rope.cos), sin: row(rope.sin) };
    }
    return tables;
  };
  let token = -1, position = -1;
  const begun = () => {
    if (position < 0) throw new Error('a decode step\'s op before begin(token, position)');
  };
  return {
    shape,
    begin(t, at) {
      if (!(Number.isInteger(at) && at >= 0 && at < shape.capacity)) throw new RangeError(`position ${at} is outside the cache's ${shape.capacity} positions`);
      token = t;
      position = at;
    },
    keep() {},
    embed(out, table, channels) {
      begun();
      settled(ops.embeddingForward(out, [token], table, 1, channels));
    },
    rope(q, qWidth, k, kWidth) {
      begun();
      settled(ops.ropeForward(q, tablesAt(position), 1, 1, qWidth));
      settled(ops.ropeForward(k, tablesAt(position), 1, 1, kWidth));
    },
    append: (k, v, layer) => (begun(), cache.append(k, v, layer, position)),
    attend: (out, q, layer) => (begun(), cache.attend(out, q, layer, position + 1)),
    allocatedBytes: () => 0,
  };
}

/** The KV cache's shape for a model generating at most `capacity` positions. */
export function kvCacheShape(arch: Architecture, capacity: number): DecodeAttentionShape {
  if (!(Number.isInteger(capacity) && capacity >= 1 && capacity <= arch.context)) throw new RangeError(`a KV cache of ${capacity} positions: the model's context is ${arch.context}`);
  return { layers: arch.layers, heads: arch.heads, kvHeads: arch.kvHeads, headSize: headDim(arch), capacity };
}

/** Whether a decoder captures its step in a CUDA graph where it can: QALC_CUDA_GRAPH (unset or 1: yes; 0: never). */
export function graphSettingOf(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '1') return true;
  if (value === '0') return false;
  throw new RangeError(`QALC_CUDA_GRAPH=${value}: expected 1 (capture the decode step in a CUDA graph, the default) or 0 (launch every op from the host each token)`);
}

export interface OpsDecoderOptions {
  /** Capture the step once in a CUDA graph and replay it, where the steps can (default true). */
  readonly graph?: boolean;
}

/** How the decoder's steps ran, for the report line. */
export type DecodeGraphState =
  | { readonly mode: 'graph'; readonly nodes: number; readonly capturedAt: number; readonly replays: number }
  | { readonly mode: 'launches'; readonly why: string };

export class OpsDecoder implements DecodeModel {
  readonly arch: Architecture;
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
  private readonly wantGraph: boolean;
  private graph: StepGraph | undefined;
  /** Forward passes so far, and the first one replayed from the graph. */
  private steps = 0;
  private capturedAt = -1;
  private replays = 0;
  /** Uncaptured steps in a row, up to the last, that allocated no device memory. */
  private settledSteps = 0;

  constructor(private readonly model: QaLoraModel, private readonly weights: TrainableCheckpoint, private readonly ops: TrainingOps, private readonly decodeSteps: DecodeSteps, options: OpsDecoderOptions = {}) {
    const arch = model.arch;
    this.arch = arch;
    const { dim, hiddenDim, vocab } = arch;
    const kvDim = headDim(arch) * arch.kvHeads;
    const expected = kvCacheShape(arch, decodeSteps.shape.capacity);
    if (JSON.stringify(expected) !== JSON.stringify(decodeSteps.shape)) throw new RangeError(`the KV cache is ${JSON.stringify(decodeSteps.shape)}, the model needs ${JSON.stringify(expected)}`);
    this.wantGraph = options.graph ?? true;
    const f = (n: number) => new Float32Array(n);
    [this.x, this.afterAttention, this.norm, this.q, this.attention, this.scratch] = [f(dim), f(dim), f(dim), f(dim), f(dim), f(dim)];
    [this.k, this.v, this.rstd] = [f(kvDim), f(kvDim), f(1)];
    [this.gate, this.up, this.hidden, this.logits] = [f(hiddenDim), f(hiddenDim), f(hiddenDim), f(vocab)];
    const kept: Floats[][] = [];
    this.saved = model.blocks.map((block) => {
      const saved = {} as Record<ProjectionName, AdapterActivations | undefined>;
      for (const p of PROJECTIONS) {
        const { layer } = block[p];
        const adapter = layer.adapter;
        const K = inFeaturesOf(layer.base);
        if (K !== block[p].inFeatures) throw new RangeError(`${block[p].name}: pad = zero (its inputs padded to ${K}) is not in the decode path`);
        saved[p] = adapter === null ? undefined : { u: f(K / adapter.groupSize), v: f(adapter.rank), mask: undefined };
        if (adapter !== null) kept.push([adapter.a, adapter.b]);
      }
      return saved;
    });
    // Generation changes no adapter: on a device they go up once, not with every call.
    decodeSteps.keep(kept);
  }

  /**
   * Untimed forwards of `token` at position 0 before a generation (which overwrites position 0):
   * the first sends the weights to the device, and where the step will be captured, the next ones
   * settle and capture it (at most `most` in all), so that the generation's tokens/s is the
   * steady rate. Returns how many ran.
   */
  warmUp(token: number, most = 6): number {
    let ran = 0;
    do {
      this.forward(token, 0);
      ran++;
    } while (ran < most && this.graph === undefined && this.wantGraph && this.decodeSteps.capture !== undefined);
    return ran;
  }

  /** Whether the steps run from a CUDA graph, and why not. */
  graphState(): DecodeGraphState {
    if (this.graph !== undefined) return { mode: 'graph', nodes: this.graph.nodes, capturedAt: this.capturedAt, replays: this.replays };
    const why = !this.wantGraph ? 'QALC_CUDA_GRAPH=0'
      : this.decodeSteps.capture === undefined ? 'the device has no CUDA graphs'
      : `not captured: ${this.steps} steps ran, and the step is captured only after two in a row that allocated no device memory`;
    return { mode: 'launches', why };
  }

  forward(token: number, pos: number): Float32Array {
    const { arch, decodeSteps, logits } = this;
    if (!(Number.isInteger(token) && token >= 0 && token < arch.vocab)) throw new RangeError(`token ${token} is outside the vocabulary of ${arch.vocab}`);
    if (!(Number.isInteger(pos) && pos >= 0 && pos < decodeSteps.shape.capacity)) throw new RangeError(`position ${pos} is outside the KV cache's ${decodeSteps.shape.capacity} positions`);
    decodeSteps.begin(token, pos);
    this.steps++;
    if (this.graph !== undefined) {
      this.graph.replay();
      this.replays++;
      return logits;
    }
    // Captured once the step has settled: a step that allocated no device memory (the weights,
    // the pool's buffers and the 16-bit layouts the readers want are there by then), two in a
    // row; a capture may allocate nothing, and whatever it records every replay repeats.
    if (this.wantGraph && decodeSteps.capture !== undefined && this.settledSteps >= 2) {
      this.graph = decodeSteps.capture(() => this.step(), [logits]);
      this.capturedAt = this.steps - 1;
      this.graph.replay();
      this.replays++;
      return logits;
    }
    const before = decodeSteps.allocatedBytes();
    this.step();
    settled(this.ops.syncToHost([logits]));
    this.settledSteps = decodeSteps.allocatedBytes() === before ? this.settledSteps + 1 : 0;
    return logits;
  }

  /** One token's ops, after begin(): everything but the logits' read-back. */
  private step(): void {
    const { arch, ops, decodeSteps, weights, x, afterAttention, norm, rstd, q, k, v, attention, scratch, gate, up, hidden, logits } = this;
    const { dim: C, hiddenDim, vocab, rmsNormEps: eps } = arch;
    const kvDim = k.length;
    decodeSteps.embed(x, weights.tokenEmbedding.data, C);
    for (let l = 0; l < arch.layers; l++) {
      const w = weights.layers[l]!;
      const block = this.model.blocks[l]!;
      const saved = this.saved[l]!;
      const linear = (p: ProjectionName, y: Float32Array, input: Float32Array) => settled(ops.qaloraLinearForward(y, input, 1, block[p].layer, saved[p]));
      settled(ops.rmsnormForward(norm, rstd, x, w.rmsAtt.data, 1, C, eps));
      linear('q', q, norm);
      linear('k', k, norm);
      linear('v', v, norm);
      decodeSteps.rope(q, C, k, kvDim);
      decodeSteps.append(k, v, l);
      decodeSteps.attend(attention, q, l);
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
  }
}
