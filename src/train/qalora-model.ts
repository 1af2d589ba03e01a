// A LLaMA whose every weight is frozen — embedding, norms, lm_head and the group-quantized
// projections — with trainable QA-LoRA adapters (A, B) on the projections the spec names.
// Forward computes the masked cross-entropy loss over a batch of sequences [B, T]; backward
// fills ∂loss/∂A and ∂loss/∂B of every adapter. The math is LlamaForward's (the model's rmsnorm ε and RoPE θ,
// run.c's RoPE, GQA, SwiGLU, tied lm_head), batched; one op per file under ops/.
//
// Weights: llama2.c stores each projection [out, in] (y = W·x); QALORA.md and GPTQ are
// input-major K×N (y = x·W). The model transposes every projection once, then RTN-quantizes
// it along the input dimension (groups of g consecutive inputs per output column), so a group
// is g consecutive input features — the same g inputs the adapter pools. With pad = zero the
// in-features are padded with zero rows to a multiple of g, and the input with zero columns
// (host arrays: the cpu backend only), so the last group pools g inputs of which some are 0. Ŵ is never stored
// for quantized projections (ops/qalora-linear.ts dequantizes on the fly).
//
// Adapters start as PEFT's LoRA does: A ~ kaiming_uniform(a=√5) = U(−1/√L, 1/√L) (fan-in
// L = K/g, the pooled width), B = 0 — so a fresh model computes the quantized base exactly.
import type { Architecture } from '../model/architecture.ts';
import { headDim } from '../model/architecture.ts';
import type { Llama2cCheckpoint, Tensor } from '../model/llama2c-checkpoint.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import { withStoredScales } from '../quant/scale-dtype.ts';
import { createRng, type Rng } from '../reference/random.ts';
import type { AttentionShape } from '../runtime/typescript/attention.ts';
import { dropoutDraws } from '../runtime/typescript/dropout-draws.ts';
import { allocateFloats, type FloatType, type Floats } from '../runtime/typescript/floats.ts';
import { type Adapter, type AdapterActivations, inFeaturesOf, type FrozenWeight, type QaLoraLinear } from '../runtime/typescript/qalora-linear.ts';
import { ropeTables, type RopeTables } from '../runtime/typescript/rope.ts';
import type { FrozenQuantizer, TrainingOps } from '../runtime/ops.ts';
import { TYPESCRIPT_OPS } from '../runtime/typescript/ops.ts';
import { UnsupportedPlanError } from './plan-to-spec.ts';
import { frozenQuantizationOf, paddedInFeatures, quantizeProjection } from './quantize-projection.ts';
import { PROJECTIONS, type ProjectionName, type ProjectionSpec, type QaLoraSpec } from './qalora-spec.ts';

/**
 * The parts of a checkpoint the model reads (a tiny random one can be built in memory). A
 * projection in `quantized` is read from there; its tensor in `layers` gives only the shape.
 */
export type TrainableCheckpoint = Pick<Llama2cCheckpoint, 'arch' | 'tokenEmbedding' | 'layers' | 'rmsFinal' | 'classifier' | 'quantized'>;

export interface ModelOptions {
  /** Activations, adapters and gradients; 'float64' is for finite-difference tests. Default float32. */
  readonly dtype?: FloatType;
  /** Seeds the initialization of every A. Default 0. */
  readonly seed?: number;
  /**
   * The ops to compute with: the TypeScript reference (default) or a backend's table, e.g.
   * nativeCpuOps() from src/runtime/cpu. Same results to float32 rounding.
   */
  readonly ops?: TrainingOps;
  /**
   * How many blocks, from the first, keep only their input during the forward and run it again
   * before their backward (the train block's `recompute`, src/train/recompute.ts). Default 0.
   */
  readonly recomputedBlocks?: number;
  /**
   * Every block not recomputed whole keeps its MLP norm's output instead of gate and up and runs
   * those two linears again before its backward (the train block's `recompute = mlp`). Default false.
   */
  readonly recomputeMlp?: boolean;
  /**
   * Every block not recomputed whole keeps its attention norm's output instead of q, k and v and
   * runs those three linears and RoPE again before its attention backward (the train block's
   * `recompute = projections`, with recomputeMlp). Default false.
   */
  readonly recomputeQkv?: boolean;
}

export interface Batch {
  readonly batchSize: number; // B
  readonly seqLen: number; // T
  /** [B·T] input tokens. */
  readonly tokens: ArrayLike<number>;
  /** [B·T] next tokens; a negative target is ignored. Omit for logits only. */
  readonly targets?: ArrayLike<number>;
  /** [B·T], non-zero where the loss counts (Alpaca: response tokens). Omit: every position. */
  readonly lossMask?: ArrayLike<number>;
}

export interface ForwardOptions {
  /** Training forwards apply adapter dropout; masks are the draws of dropoutSeed's sequence, layer after layer. Default false. */
  readonly training?: boolean;
  readonly dropoutSeed?: number;
  /**
   * Leave the logits where the backend computed them (a caller that needs only the loss): on a
   * device backend they are B·T·vocab floats, 262 MB at a 7B-shaped step, copied back for nothing.
   * With targets and ops that fuse lm_head and the cross-entropy (TrainingOps.lmHeadCrossEntropy)
   * no logits are computed at all (`logits` then throws). Default false: `logits` holds them on the host.
   */
  readonly logitsOnDevice?: boolean;
}

/** A trainable tensor and its gradient, as the optimizer sees it. */
export interface Parameter {
  readonly name: string; // e.g. layers.0.q.A
  readonly value: Floats;
  readonly grad: Floats;
}

export interface Projection {
  readonly name: string; // layers.<l>.<projection>
  readonly layer: QaLoraLinear;
  readonly spec: ProjectionSpec;
  /** The checkpoint's in-features; fewer than the layer's when pad = zero padded them. */
  readonly inFeatures: number;
}

/** x [rows, K] as [rows, Kp], the padding columns 0. */
function padColumns(x: Floats, rows: number, K: number, Kp: number, dtype: FloatType): Floats {
  const out = allocateFloats(dtype, rows * Kp);
  for (let r = 0; r < rows; r++) out.set(x.subarray(r * K, r * K + K), r * Kp);
  return out;
}

/** Ops whose arrays are host memory: the padding copies above can read and write them. */
const HOST_OPS = new Set(['typescript', 'native-cpu']);

interface ProjectionActivations {
  saved: AdapterActivations | undefined;
}

/**
 * A block's forward values. The backward reads only what it needs of them: what the norms'
 * backward reads of the residual stream (normInput, ffnNormInput), RoPE'd q and k, v,
 * attention's output and saved values, gate and up, and each adapter's u and v — not the normed
 * inputs of the linear layers nor SwiGLU's output, since the frozen base's input gradient needs
 * only dy and Ŵ. Those (normAtt, normFfn, hidden) are one array shared by every block: at the 7B
 * shape, sequence 2048, 154 MB a block not held.
 *
 * The residual stream itself (input, afterAttention) is float32, what the forward adds in. Where
 * the ops keep a norm's input in the form its backward reads it (TrainingOps.
 * rmsnormForwardKeepingInput: the cuda backend's 16-bit rows), the stream is one working pair of
 * arrays every block shares and the blocks keep only those copies, half the bytes; otherwise
 * (the host backends) each block keeps its float32 stream, and normInput is input itself.
 *
 * A recomputed block (ModelOptions.recomputedBlocks) holds its own float32 `input` only: every
 * other array is one set shared by all recomputed blocks (the same host arrays, so a device
 * backend keeps one device copy of them), which the backward fills again, from that input, just
 * before the block's backward reads it.
 */
interface BlockActivations {
  readonly input: Floats; // residual stream entering the block [BT, C], float32
  readonly normInput: Floats; // what the attention norm's backward reads as x: input, or its kept copy
  readonly rstdAtt: Floats;
  readonly normAtt: Floats;
  readonly q: Floats; // after RoPE [BT, C]
  readonly k: Floats; // after RoPE [BT, kvDim]
  readonly v: Floats;
  readonly probs: Floats; // what the attention forward saves: ops.attentionSavedLength floats
  readonly attention: Floats; // [BT, C], before o
  readonly afterAttention: Floats; // residual stream after the attention half [BT, C], float32
  readonly ffnNormInput: Floats; // what the MLP norm's backward reads as x: afterAttention, or its kept copy
  readonly rstdFfn: Floats;
  readonly normFfn: Floats;
  readonly gate: Floats; // [BT, hidden]
  readonly up: Floats;
  readonly hidden: Floats; // silu(gate)·up
  readonly projections: Record<ProjectionName, ProjectionActivations>;
}

interface Activations {
  readonly batchSize: number;
  readonly seqLen: number;
  readonly blocks: BlockActivations[];
  readonly output: Floats; // residual stream after the last block
  readonly rstdFinal: Floats;
  readonly normFinal: Floats;
  /** The unfused lm_head's [BT, V] arrays, allocated by the first forward that computes logits. */
  logitArrays: LogitArrays | undefined;
  readonly scratch: Floats; // [BT, C]: o's and down's outputs before the residual add
  readonly gradients: Record<'residual' | 'norm' | 'attention' | 'q' | 'k' | 'v' | 'hidden' | 'gate' | 'up', Floats>;
}

/**
 * Where a forward is in the step's dropout sequence: each adapted layer with dropout takes the
 * next u.length draws of `seed`'s counter-based sequence, in the order the layers run
 * (dropout-draws.ts; the backend expands them). No seed: no dropout.
 */
interface DropoutCursor {
  readonly seed: number | undefined;
  next: number;
}

interface LogitArrays {
  readonly logits: Floats;
  readonly probs: Floats;
  readonly dLogits: Floats;
}

/**
 * What the last forward left of lm_head for the backward: the logits and their softmax (the
 * unfused ops); the loss alone (the fused op without a gradient: the backward runs it again with
 * one); or lm_head's input gradient itself, which a training forward's fused op wrote into
 * gradients.norm (nothing touches that array before the backward reads it).
 */
type HeadState = 'logits' | 'loss' | 'inputGradient';

const transposeToInputMajor = (tensor: Tensor): Float64Array => {
  const [outFeatures, inFeatures] = tensor.shape;
  const w = new Float64Array(inFeatures * outFeatures);
  for (let o = 0; o < outFeatures; o++) {
    for (let i = 0; i < inFeatures; i++) w[i * outFeatures + o] = tensor.data[o * inFeatures + i];
  }
  return w;
};

/** W (K×N) with zero rows appended up to `padded` rows: inputs that are always 0. */
function padRows(weight: Float64Array, inFeatures: number, outFeatures: number, padded: number): Float64Array {
  if (padded === inFeatures) return weight;
  const out = new Float64Array(padded * outFeatures);
  out.set(weight.subarray(0, inFeatures * outFeatures));
  return out;
}

/**
 * The frozen base and the adapter of one projection. The base is RTN-quantized from the float
 * weight, unless the checkpoint holds it quantized already (`prequantized`: a GPTQ checkpoint's
 * codes, GPTQ's at load time, or random weights quantized as they were drawn), which is used as
 * it is: `tensor` then serves for its shape only, and may hold no data. Either way its scales are
 * held in the spec's scale dtype, what a checkpoint stores (fp16 for GPTQ files already).
 */
function buildProjection(name: string, tensor: Tensor, spec: ProjectionSpec, dtype: FloatType, rng: Rng, prequantized?: QuantizedWeight, quantizer?: () => FrozenQuantizer): QaLoraLinear {
  const [outFeatures, realInFeatures] = tensor.shape;
  const usesGroups = spec.bits !== null || spec.adapter !== null;
  const inFeatures = paddedInFeatures(realInFeatures, spec);
  if (usesGroups && !(Number.isInteger(spec.group) && spec.group >= 1 && inFeatures % spec.group === 0)) {
    throw new RangeError(`group size ${spec.group} does not divide in_features ${inFeatures} of ${name}`);
  }
  let base: FrozenWeight;
  if (spec.bits === null) {
    const weight = padRows(transposeToInputMajor(tensor), realInFeatures, outFeatures, inFeatures);
    const dense = allocateFloats(dtype, weight.length);
    dense.set(weight);
    base = { kind: 'dense', inFeatures, outFeatures, weight: dense };
  } else if (prequantized) {
    if (prequantized.bits !== spec.bits || prequantized.groupSize !== spec.group || prequantized.inFeatures !== inFeatures || prequantized.outFeatures !== outFeatures) {
      throw new RangeError(`${name} is stored quantized with ${prequantized.bits} bits, group ${prequantized.groupSize}, but the spec asks for ${spec.bits} bits, group ${spec.group}`);
    }
    base = { kind: 'quantized', weight: spec.scaleDtype ? withStoredScales(prequantized, spec.scaleDtype, name) : prequantized };
  } else {
    const data = tensor.data;
    if (data.length !== outFeatures * realInFeatures) throw new RangeError(`${name} holds ${data.length} floats, its shape ${outFeatures}×${realInFeatures}`);
    // A device backend quantizes the checkpoint's floats where it computes (frozenQuantizationOf says which it can).
    const quantization = quantizer !== undefined && data instanceof Float32Array ? frozenQuantizationOf(spec, realInFeatures) : undefined;
    const weight = quantization !== undefined
      ? quantizer!().quantize(name, data as Float32Array, outFeatures, realInFeatures, quantization)
      : quantizeProjection(name, outFeatures, realInFeatures, spec, (o, into) => into.set(data.subarray(o * realInFeatures, (o + 1) * realInFeatures)));
    base = { kind: 'quantized', weight };
  }
  if (spec.adapter === null) return { base, adapter: null };
  const { rank, alpha, dropout, pooling } = spec.adapter;
  if (!(Number.isInteger(rank) && rank >= 1)) throw new RangeError(`adapter rank of ${name} must be a positive integer, got ${rank}`);
  if (!(dropout >= 0 && dropout < 1)) throw new RangeError(`adapter dropout of ${name} must be in [0, 1), got ${dropout}`);
  const groups = inFeatures / spec.group;
  const bound = 1 / Math.sqrt(groups);
  const a = allocateFloats(dtype, groups * rank);
  for (let j = 0; j < a.length; j++) a[j] = rng.uniform(-bound, bound);
  const adapter: Adapter = {
    groupSize: spec.group, rank, pooling, scaling: alpha / rank, dropout,
    a, b: allocateFloats(dtype, rank * outFeatures),
    gradA: allocateFloats(dtype, a.length), gradB: allocateFloats(dtype, rank * outFeatures),
  };
  return { base, adapter };
}

export class QaLoraModel {
  readonly arch: Architecture;
  readonly dtype: FloatType;
  readonly ops: TrainingOps;
  /** blocks[l][projection]. */
  readonly blocks: readonly Readonly<Record<ProjectionName, Projection>>[];
  private readonly checkpoint: TrainableCheckpoint;
  private readonly rope: RopeTables;
  private readonly kvDim: number;
  private activations: Activations | undefined;
  private lastBatch: Batch | undefined;
  /** Blocks 0 … recomputedBlocks − 1 are recomputed in the backward. */
  readonly recomputedBlocks: number;
  /** Gate and up of the other blocks are recomputed in the backward from their kept normed input. */
  readonly recomputeMlp: boolean;
  /** q, k and v of the other blocks are recomputed in the backward from their kept normed attention input. */
  readonly recomputeQkv: boolean;
  /** The last forward's dropout seed and each block's first draw (and its gate's), for the recomputed forwards again. */
  private lastDropout: { readonly seed: number | undefined; readonly blockOffsets: readonly number[]; readonly gateOffsets: readonly number[] } | undefined;
  private head: HeadState = 'logits';

  constructor(checkpoint: TrainableCheckpoint, spec: QaLoraSpec, options: ModelOptions = {}) {
    const arch = checkpoint.arch;
    if (spec.length !== arch.layers) throw new RangeError(`the spec has ${spec.length} blocks, the model ${arch.layers}`);
    this.arch = arch;
    this.dtype = options.dtype ?? 'float32';
    this.ops = options.ops ?? TYPESCRIPT_OPS;
    this.checkpoint = checkpoint;
    this.recomputedBlocks = options.recomputedBlocks ?? 0;
    this.recomputeMlp = options.recomputeMlp ?? false;
    this.recomputeQkv = options.recomputeQkv ?? false;
    if (!(Number.isInteger(this.recomputedBlocks) && this.recomputedBlocks >= 0 && this.recomputedBlocks <= arch.layers)) {
      throw new RangeError(`recomputed blocks must be an integer from 0 to the model's ${arch.layers} blocks, got ${this.recomputedBlocks}`);
    }
    this.kvDim = headDim(arch) * arch.kvHeads;
    this.rope = ropeTables(headDim(arch), arch.context, arch.ropeTheta);
    const rng = createRng(options.seed ?? 0);
    // The ops' frozen quantizer, opened at the first float projection to quantize and closed when every block is built.
    let quantizer: FrozenQuantizer | undefined;
    const openQuantizer = this.ops.frozenQuantizer === undefined ? undefined : () => (quantizer ??= this.ops.frozenQuantizer!());
    try {
      this.blocks = this.buildBlocks(spec, rng, openQuantizer);
    } finally {
      quantizer?.close();
    }
  }

  private buildBlocks(spec: QaLoraSpec, rng: Rng, quantizer: (() => FrozenQuantizer) | undefined): Readonly<Record<ProjectionName, Projection>>[] {
    const { checkpoint } = this;
    return spec.map((blockSpec, l) => {
      const block = {} as Record<ProjectionName, Projection>;
      for (const p of PROJECTIONS) {
        const name = `layers.${l}.${p}`;
        const tensor = checkpoint.layers[l][p];
        const layer = buildProjection(name, tensor, blockSpec[p], this.dtype, rng, checkpoint.quantized?.get(name), quantizer);
        if (inFeaturesOf(layer.base) !== tensor.shape[1] && !HOST_OPS.has(this.ops.name)) {
          throw new UnsupportedPlanError(`${name}: pad = zero runs on the cpu backend only so far (the ${this.ops.name} ops keep activations on the device)`);
        }
        block[p] = { name, spec: blockSpec[p], layer, inFeatures: tensor.shape[1]! };
      }
      return block;
    });
  }

  /** Every projection with an adapter, block by block in PROJECTIONS order. */
  adapters(): { name: string; adapter: Adapter }[] {
    return this.blocks.flatMap((block) => PROJECTIONS.flatMap((p) => {
      const adapter = block[p].layer.adapter;
      return adapter === null ? [] : [{ name: block[p].name, adapter }];
    }));
  }

  /** A then B of every adapter; the values are the live arrays the model computes with. */
  parameters(): Parameter[] {
    return this.adapters().flatMap(({ name, adapter }) => [
      { name: `${name}.A`, value: adapter.a, grad: adapter.gradA },
      { name: `${name}.B`, value: adapter.b, grad: adapter.gradB },
    ]);
  }

  /** Through the ops: a device backend may hold the gradients (an optimizer on the device never syncs them). */
  async zeroGradients(): Promise<void> {
    for (const { adapter } of this.adapters()) {
      await this.ops.zeroFill(adapter.gradA);
      await this.ops.zeroFill(adapter.gradB);
    }
  }

  /** Logits [B·T, vocab] of the last forward (on the host unless it was asked for logitsOnDevice). */
  get logits(): Floats {
    if (this.activations === undefined) throw new Error('no forward has run');
    if (this.head !== 'logits' || this.activations.logitArrays === undefined) throw new Error('the last forward computed its loss without logits (fused lm_head and cross-entropy, logitsOnDevice)');
    return this.activations.logitArrays.logits;
  }

  /**
   * Runs the batch; resolves to the mean masked loss (NaN without targets or counted
   * positions). Asynchronous because a GPU backend's ops are; one forward or backward at a time.
   */
  async forward(batch: Batch, options: ForwardOptions = {}): Promise<number> {
    const { arch, kvDim, rope, checkpoint, ops } = this;
    const { batchSize: B, seqLen: T, tokens } = batch;
    if (T > arch.context) throw new RangeError(`sequence length ${T} exceeds the context of ${arch.context}`);
    const rows = B * T;
    if (tokens.length !== rows) throw new RangeError(`batch has ${tokens.length} tokens, expected ${B}×${T}`);
    const acts = this.activationsFor(B, T);
    const { dim: C, vocab, rmsNormEps: eps } = arch;
    // One counter-based sequence per forward, layer after layer (DropoutCursor).
    const dropout: DropoutCursor = { seed: options.training ? (options.dropoutSeed ?? 0) : undefined, next: 0 };
    const blockOffsets: number[] = [];
    const gateOffsets: number[] = [];

    await ops.embeddingForward(acts.blocks[0]?.input ?? acts.output, tokens, checkpoint.tokenEmbedding.data, rows, C);
    for (let l = 0; l < arch.layers; l++) {
      blockOffsets.push(dropout.next);
      await this.blockForward(l, B, T, dropout, l + 1 < arch.layers ? acts.blocks[l + 1].input : acts.output, gateOffsets);
    }
    this.lastDropout = { seed: dropout.seed, blockOffsets, gateOffsets };
    await ops.rmsnormForward(acts.normFinal, acts.rstdFinal, acts.output, checkpoint.rmsFinal.data, rows, C, eps);

    this.lastBatch = batch;
    const { targets, lossMask } = batch;
    if (targets !== undefined && targets.length !== rows) throw new RangeError(`batch has ${targets.length} targets, expected ${rows}`);
    const fused = ops.lmHeadCrossEntropy;
    if (fused !== undefined && targets !== undefined && options.logitsOnDevice) {
      // The loss without the logits; a training forward takes lm_head's input gradient at once (its backward follows).
      const dx = options.training ? acts.gradients.norm : undefined;
      if (dx !== undefined) await ops.zeroFill(dx);
      this.head = dx !== undefined ? 'inputGradient' : 'loss';
      return (await fused(dx, acts.normFinal, checkpoint.classifier.data, targets, lossMask, rows, C, vocab)).loss;
    }
    const { logits, probs } = this.logitArrays(acts);
    this.head = 'logits';
    await ops.lmHeadForward(logits, acts.normFinal, checkpoint.classifier.data, rows, C, vocab);
    const loss = targets !== undefined ? (await ops.crossEntropyForward(probs, logits, targets, lossMask, rows, vocab)).loss : NaN;
    if (!options.logitsOnDevice) await ops.syncToHost([logits]);
    return loss;
  }

  /**
   * Block l's forward from its input, into its activations. `next` receives the residual stream
   * leaving the block; a recomputation leaves it out (the block above has used it already).
   */
  private async blockForward(l: number, B: number, T: number, dropout: DropoutCursor, next: Floats | undefined, gateOffsets?: number[]): Promise<void> {
    const { arch, kvDim, rope, checkpoint, ops } = this;
    const acts = this.activations!;
    const rows = B * T;
    const { dim: C, hiddenDim: hidden } = arch;
    const shape = this.attentionShape(B, T);
    const w = checkpoint.layers[l];
    const p = this.blocks[l];
    const a = acts.blocks[l];
    const linear = (projection: Projection, saved: ProjectionActivations, y: Floats, x: Floats) => this.linearForward(projection, saved, y, x, rows, dropout);

    await this.normForward(a.normAtt, a.rstdAtt, a.normInput, a.input, w.rmsAtt.data, rows);
    await this.qkvForward(l, B, T, dropout);
    await ops.attentionForward(a.attention, a.probs, a.q, a.k, a.v, shape);
    await linear(p.o, a.projections.o, acts.scratch, a.attention);
    await ops.residualAdd(a.afterAttention, a.input, acts.scratch, rows * C);

    await this.normForward(a.normFfn, a.rstdFfn, a.ffnNormInput, a.afterAttention, w.rmsFfn.data, rows);
    if (gateOffsets !== undefined) gateOffsets[l] = dropout.next;
    await this.gateUpForward(l, rows, dropout);
    await ops.swigluForward(a.hidden, a.gate, a.up, rows * hidden);
    // A recomputation still runs down: its adapter's u and v are what down's backward reads.
    await linear(p.down, a.projections.down, acts.scratch, a.hidden);
    if (next !== undefined) await ops.residualAdd(next, a.afterAttention, acts.scratch, rows * C);
  }

  /** Block l's q, k and v projections of its normed attention input, q and k rotated. */
  private async qkvForward(l: number, B: number, T: number, dropout: DropoutCursor): Promise<void> {
    const { arch: { dim: C }, kvDim, rope, ops } = this;
    const p = this.blocks[l];
    const a = this.activations!.blocks[l];
    const rows = B * T;
    await this.linearForward(p.q, a.projections.q, a.q, a.normAtt, rows, dropout);
    await this.linearForward(p.k, a.projections.k, a.k, a.normAtt, rows, dropout);
    await this.linearForward(p.v, a.projections.v, a.v, a.normAtt, rows, dropout);
    await ops.ropeForward(a.q, rope, B, T, C);
    await ops.ropeForward(a.k, rope, B, T, kvDim);
  }

  /** Block l's gate and up projections of its normed MLP input. */
  private async gateUpForward(l: number, rows: number, dropout: DropoutCursor): Promise<void> {
    const p = this.blocks[l];
    const a = this.activations!.blocks[l];
    await this.linearForward(p.gate, a.projections.gate, a.gate, a.normFfn, rows, dropout);
    await this.linearForward(p.up, a.projections.up, a.up, a.normFfn, rows, dropout);
  }

  /** RMSNorm's forward of x; `kept` is x itself, or the array the ops keep it in for the backward. */
  private async normForward(out: Floats, rstd: Floats, kept: Floats, x: Floats, weight: Floats, rows: number): Promise<void> {
    const { dim: C, rmsNormEps: eps } = this.arch;
    const keeping = this.ops.rmsnormForwardKeepingInput;
    if (kept === x || keeping === undefined) await this.ops.rmsnormForward(out, rstd, x, weight, rows, C, eps);
    else await keeping(out, rstd, kept, x, weight, rows, C, eps);
  }

  private async linearForward(projection: Projection, saved: ProjectionActivations, y: Floats, x: Floats, rows: number, dropout: DropoutCursor): Promise<void> {
    const adapter = projection.layer.adapter;
    if (saved.saved !== undefined) {
      saved.saved.mask = undefined;
      if (adapter !== null && adapter.dropout > 0 && dropout.seed !== undefined) {
        saved.saved.mask = dropoutDraws(dropout.seed, dropout.next);
        dropout.next += saved.saved.u.length;
      }
    }
    const padded = inFeaturesOf(projection.layer.base);
    const input = padded === projection.inFeatures ? x : padColumns(x, rows, projection.inFeatures, padded, this.dtype);
    await this.ops.qaloraLinearForward(y, input, rows, projection.layer, saved.saved);
  }

  /**
   * Gradients of the last forward's loss w.r.t. every A and B. They overwrite the previous
   * ones unless `accumulate` (gradient accumulation over micro-batches: scale the loss yourself).
   */
  async backward(options: { accumulate?: boolean; syncGradients?: boolean } = {}): Promise<void> {
    const batch = this.lastBatch;
    const acts = this.activations;
    if (batch === undefined || acts === undefined || batch.targets === undefined) throw new Error('backward needs a forward with targets');
    if (!options.accumulate) await this.zeroGradients();
    const { arch, kvDim, rope, checkpoint, ops } = this;
    const { batchSize: B, seqLen: T } = batch;
    const rows = B * T;
    const { dim: C, hiddenDim: hidden, vocab } = arch;
    const g = acts.gradients;
    const shape = this.attentionShape(B, T);
    const linear = async (projection: Projection, saved: ProjectionActivations, dx: Floats, dy: Floats) => {
      const K = projection.inFeatures, padded = inFeaturesOf(projection.layer.base);
      if (padded === K) return ops.qaloraLinearBackward(dx, dy, rows, projection.layer, saved.saved);
      // The gradient of the padding inputs is dropped: they are constants.
      const paddedDx = allocateFloats(this.dtype, rows * padded);
      await ops.qaloraLinearBackward(paddedDx, dy, rows, projection.layer, saved.saved);
      for (let r = 0; r < rows; r++) for (let i = 0; i < K; i++) dx[r * K + i] += paddedDx[r * padded + i]!;
    };

    // g.norm = ∂loss/∂(lm_head's input).
    if (this.head === 'logits') {
      const { probs, dLogits } = this.logitArrays(acts);
      await ops.zeroFill(dLogits);
      await ops.crossEntropyBackward(dLogits, probs, batch.targets, batch.lossMask, rows, vocab);
      await ops.zeroFill(g.norm);
      await ops.lmHeadBackward(g.norm, dLogits, checkpoint.classifier.data, rows, C, vocab);
    } else if (this.head === 'loss') {
      await ops.zeroFill(g.norm);
      await ops.lmHeadCrossEntropy!(g.norm, acts.normFinal, checkpoint.classifier.data, batch.targets, batch.lossMask, rows, C, vocab);
    }
    // The blocks below overwrite g.norm: a second backward of this forward computes it again.
    if (this.head === 'inputGradient') this.head = 'loss';
    await ops.zeroFill(g.residual);
    await ops.rmsnormBackward(g.residual, g.norm, acts.output, checkpoint.rmsFinal.data, acts.rstdFinal, rows, C);

    // g.residual holds ∂loss/∂(the residual stream) at the current depth, walking down.
    for (let l = arch.layers - 1; l >= 0; l--) {
      const w = checkpoint.layers[l];
      const p = this.blocks[l];
      const a = acts.blocks[l];
      if (l < this.recomputedBlocks) {
        // The same draws as the forward's: the cursor starts at the block's first.
        const dropout = this.lastDropout!;
        await this.blockForward(l, B, T, { seed: dropout.seed, next: dropout.blockOffsets[l]! }, undefined);
      } else if (this.recomputeMlp) {
        // Gate and up again from the kept normed input, with the forward's dropout draws (their u and v are rewritten as they were).
        const dropout = this.lastDropout!;
        await this.gateUpForward(l, rows, { seed: dropout.seed, next: dropout.gateOffsets[l]! });
      }

      await ops.zeroFill(g.hidden);
      await linear(p.down, a.projections.down, g.hidden, g.residual);
      await ops.zeroFill(g.gate);
      await ops.zeroFill(g.up);
      await ops.swigluBackward(g.gate, g.up, g.hidden, a.gate, a.up, rows * hidden);
      await ops.zeroFill(g.norm);
      await linear(p.gate, a.projections.gate, g.norm, g.gate);
      await linear(p.up, a.projections.up, g.norm, g.up);
      await ops.rmsnormBackward(g.residual, g.norm, a.ffnNormInput, w.rmsFfn.data, a.rstdFfn, rows, C);

      await ops.zeroFill(g.attention);
      await linear(p.o, a.projections.o, g.attention, g.residual);
      if (l >= this.recomputedBlocks && this.recomputeQkv) {
        // q, k and v again from the kept normed input, with the forward's draws (q is the block's first adapted layer).
        const dropout = this.lastDropout!;
        await this.qkvForward(l, B, T, { seed: dropout.seed, next: dropout.blockOffsets[l]! });
      }
      await ops.zeroFill(g.q);
      await ops.zeroFill(g.k);
      await ops.zeroFill(g.v);
      await ops.attentionBackward(g.q, g.k, g.v, g.attention, a.q, a.k, a.v, a.attention, a.probs, shape);
      await ops.ropeBackward(g.q, rope, B, T, C);
      await ops.ropeBackward(g.k, rope, B, T, kvDim);
      await ops.zeroFill(g.norm);
      await linear(p.q, a.projections.q, g.norm, g.q);
      await linear(p.k, a.projections.k, g.norm, g.k);
      await linear(p.v, a.projections.v, g.norm, g.v);
      await ops.rmsnormBackward(g.residual, g.norm, a.normInput, w.rmsAtt.data, a.rstdAtt, rows, C);
    }
    // An optimizer on the device reads the gradients where they are (syncGradients: false).
    if (options.syncGradients ?? true) await ops.syncToHost(this.parameters().map((p) => p.grad));
  }

  private logitArrays(acts: Activations): LogitArrays {
    const length = acts.batchSize * acts.seqLen * this.arch.vocab;
    acts.logitArrays ??= { logits: allocateFloats(this.dtype, length), probs: allocateFloats(this.dtype, length), dLogits: allocateFloats(this.dtype, length) };
    return acts.logitArrays;
  }

  private attentionShape(batch: number, seqLen: number): AttentionShape {
    const { heads, kvHeads } = this.arch;
    return { batch, seqLen, heads, kvHeads, headSize: headDim(this.arch) };
  }

  private activationsFor(B: number, T: number): Activations {
    if (this.activations?.batchSize === B && this.activations.seqLen === T) return this.activations;
    const { dim: C, hiddenDim: hidden, heads } = this.arch;
    const rows = B * T;
    const f = (n: number) => allocateFloats(this.dtype, n);
    // Forward-only values, overwritten by each block in turn (see BlockActivations); with
    // recompute = mlp gate and up are too (the backward recomputes them), and normFfn is each
    // block's; with recompute = projections so are q, k and v, and normAtt is each block's.
    const forwardOnly = { normAtt: f(rows * C), normFfn: f(rows * C), hidden: f(rows * hidden) };
    const recomputedMlp = this.recomputeMlp ? { gate: f(rows * hidden), up: f(rows * hidden) } : undefined;
    const recomputedQkv = this.recomputeQkv ? { q: f(rows * C), k: f(rows * this.kvDim), v: f(rows * this.kvDim) } : undefined;
    // A projection's u and v [rows, L] and [rows, r]: the recomputed blocks share one pair per
    // projection and shape (a mixed spec's blocks may differ in group size or rank).
    const sharedSaved = new Map<string, AdapterActivations>();
    const savedFor = (name: ProjectionName, L: number, rank: number, shared: boolean): AdapterActivations => {
      const allocate = (): AdapterActivations => ({ u: f(rows * L), v: f(rows * rank), mask: undefined });
      if (!shared) return allocate();
      const key = `${name} ${L} ${rank}`;
      const found = sharedSaved.get(key) ?? allocate();
      sharedSaved.set(key, found);
      return found;
    };
    const projectionsOf = (block: Readonly<Record<ProjectionName, Projection>>, shared: boolean) => {
      const projections = {} as Record<ProjectionName, ProjectionActivations>;
      for (const name of PROJECTIONS) {
        const adapter = block[name].layer.adapter;
        const K = inFeaturesOf(block[name].layer.base);
        projections[name] = { saved: adapter === null ? undefined : savedFor(name, K / adapter.groupSize, adapter.rank, shared) };
      }
      return projections;
    };
    // The float32 residual stream the forward adds in: one working pair for every block where the
    // ops keep the norms' inputs for the backward (see BlockActivations), else each block's own.
    const keeping = this.ops.rmsnormForwardKeepingInput !== undefined;
    const working = keeping ? { input: f(rows * C), afterAttention: f(rows * C) } : undefined;
    const blockArrays = (): Omit<BlockActivations, 'input' | 'normInput' | 'projections'> => {
      const afterAttention = working?.afterAttention ?? f(rows * C);
      return {
        ...forwardOnly,
        rstdAtt: f(rows),
        ...(recomputedQkv !== undefined ? { ...recomputedQkv, normAtt: f(rows * C) } : { q: f(rows * C), k: f(rows * this.kvDim), v: f(rows * this.kvDim) }),
        probs: f(this.ops.attentionSavedLength(this.attentionShape(B, T))),
        attention: f(rows * C), afterAttention, ffnNormInput: keeping ? f(rows * C) : afterAttention, rstdFfn: f(rows),
        ...(recomputedMlp !== undefined ? { ...recomputedMlp, normFfn: f(rows * C) } : { gate: f(rows * hidden), up: f(rows * hidden) }),
      };
    };
    // One set of arrays for every recomputed block (none when no block is), the kept norm input among them.
    const recomputed = this.recomputedBlocks > 0 ? { ...blockArrays(), normInput: keeping ? f(rows * C) : undefined } : undefined;
    const blocks = this.blocks.map((block, l): BlockActivations => {
      const shared = l < this.recomputedBlocks;
      // A recomputed block runs again from its own float32 input.
      const input = working !== undefined && !shared ? working.input : f(rows * C);
      const arrays = shared ? recomputed! : { ...blockArrays(), normInput: keeping ? f(rows * C) : undefined };
      return { ...arrays, input, normInput: arrays.normInput ?? input, projections: projectionsOf(block, shared) };
    });
    this.activations = {
      batchSize: B, seqLen: T, blocks,
      output: working?.input ?? f(rows * C), rstdFinal: f(rows), normFinal: f(rows * C), logitArrays: undefined,
      scratch: f(rows * C),
      gradients: {
        residual: f(rows * C), norm: f(rows * C), attention: f(rows * C), q: f(rows * C), k: f(rows * this.kvDim),
        v: f(rows * this.kvDim), hidden: f(rows * hidden), gate: f(rows * hidden), up: f(rows * hidden),
      },
    };
    return this.activations;
  }
}

