// The native CPU backend as a TrainingOps table (src/runtime/ops.ts): the same
// signatures as the TypeScript ops, computed by qalc_cpu.node on the same arrays in place.
//
//   const model = new QaLoraModel(checkpoint, spec, { ops: nativeCpuOps() });
//
// Float32 only: a float64 model (the finite-difference tests) stays on the TypeScript ops,
// and handing one of its arrays to this table throws. Targets and loss masks, which the ops
// take as any ArrayLike, are copied to Int32Array / Float32Array when they are not already.
import { poolingFactor } from '../../reference/adapter.ts';
import { attentionSavedLength, type AttentionShape } from '../typescript/attention.ts';
import type { CrossEntropyResult } from '../typescript/cross-entropy.ts';
import type { Floats } from '../typescript/floats.ts';
import { hostKeepMask, inFeaturesOf, outFeaturesOf, type AdapterActivations, type QaLoraLinear } from '../typescript/qalora-linear.ts';
import type { RopeTables } from '../typescript/rope.ts';
import { embeddingForward } from '../typescript/embedding.ts';
import { residualAdd, syncToHost, zeroFill } from '../typescript/residual.ts';
import type { SyncTrainingOps } from '../ops.ts';
import { cpuAddon, type CpuAddon, type NativeLinearLayer } from './addon.ts';

function f32(array: Floats, name: string): Float32Array {
  if (!(array instanceof Float32Array)) throw new TypeError(`the native CPU backend computes in float32; ${name} is a Float64Array`);
  return array;
}

function int32(values: ArrayLike<number>): Int32Array {
  return values instanceof Int32Array ? values : Int32Array.from(values);
}

function maskOf(mask: ArrayLike<number> | undefined): Float32Array | undefined {
  return mask === undefined || mask instanceof Float32Array ? mask : Float32Array.from(mask);
}

// Frozen codes, transposed once per weight for the native dx (codes never change after
// quantization; a merge changes only the zeros).
const transposedCodes = new WeakMap<Uint8Array, Uint8Array>();

function transposeCodes(q: Uint8Array, inFeatures: number, outFeatures: number): Uint8Array {
  let qT = transposedCodes.get(q);
  if (qT === undefined) {
    qT = new Uint8Array(q.length);
    for (let i = 0; i < inFeatures; i++) for (let o = 0; o < outFeatures; o++) qT[o * inFeatures + i] = q[i * outFeatures + o];
    transposedCodes.set(q, qT);
  }
  return qT;
}

/** What native/kernels.h's LinearLayer reads, from the TypeScript layer and its saved activations. */
export function nativeLinearLayer(layer: QaLoraLinear, saved: AdapterActivations | undefined, rows: number): NativeLinearLayer {
  const { base, adapter } = layer;
  const inFeatures = inFeaturesOf(base), outFeatures = outFeaturesOf(base);
  const frozen = base.kind === 'quantized'
    ? { q: base.weight.q, qT: transposeCodes(base.weight.q, inFeatures, outFeatures), scales: base.weight.scales, zeros: base.weight.zeros, quantGroup: base.weight.groupSize }
    : { dense: f32(base.weight, 'the dense weight') };
  if (adapter === null) return { inFeatures, outFeatures, ...frozen, rank: 0 };
  if (saved === undefined) throw new Error('a layer with an adapter needs activations to save');
  if (base.kind === 'quantized' && base.weight.groupSize !== adapter.groupSize) {
    throw new RangeError(`adapter group size ${adapter.groupSize} differs from the quantization group size ${base.weight.groupSize}`);
  }
  return {
    inFeatures, outFeatures, ...frozen,
    rank: adapter.rank, adapterGroup: adapter.groupSize, poolFactor: poolingFactor(adapter.pooling, adapter.groupSize),
    scaling: adapter.scaling, dropout: adapter.dropout,
    a: f32(adapter.a, 'A'), b: f32(adapter.b, 'B'), gradA: f32(adapter.gradA, 'dA'), gradB: f32(adapter.gradB, 'dB'),
    u: f32(saved.u, 'u'), v: f32(saved.v, 'v'), mask: hostKeepMask(layer, saved, rows),
  };
}

function attention(addon: CpuAddon) {
  const dims = (s: AttentionShape) => [s.batch, s.seqLen, s.heads, s.kvHeads, s.headSize] as const;
  return {
    attentionForward: (out: Floats, probs: Floats, q: Floats, k: Floats, v: Floats, shape: AttentionShape) =>
      addon.attentionForward(f32(out, 'out'), f32(probs, 'probs'), f32(q, 'q'), f32(k, 'k'), f32(v, 'v'), ...dims(shape)),
    attentionSavedLength,
    attentionBackward: (dq: Floats, dk: Floats, dv: Floats, dOut: Floats, q: Floats, k: Floats, v: Floats, _out: Floats, probs: Floats, shape: AttentionShape) =>
      addon.attentionBackward(
        f32(dq, 'dq'), f32(dk, 'dk'), f32(dv, 'dv'), f32(dOut, 'dOut'), f32(q, 'q'), f32(k, 'k'), f32(v, 'v'), f32(probs, 'probs'), ...dims(shape),
      ),
  };
}

function rope(addon: CpuAddon, direction: 1 | -1) {
  return (x: Floats, tables: RopeTables, batch: number, seqLen: number, width: number) =>
    addon.ropeRotate(f32(x, 'x'), tables.cos, tables.sin, tables.positions, batch, seqLen, width, tables.headSize, direction);
}

/** The TrainingOps of the native CPU backend; throws CpuAddonError when the addon is not built. */
export function nativeCpuOps(): SyncTrainingOps {
  const addon = cpuAddon();
  return {
    name: 'native-cpu',
    embeddingForward, residualAdd, zeroFill, syncToHost, // glue: the TypeScript ones are as fast
    rmsnormForward: (out, rstd, x, weight, rows, channels, eps) =>
      addon.rmsnormForward(f32(out, 'out'), f32(rstd, 'rstd'), f32(x, 'x'), f32(weight, 'weight'), rows, channels, eps),
    rmsnormBackward: (dx, dy, x, weight, rstd, rows, channels) =>
      addon.rmsnormBackward(f32(dx, 'dx'), f32(dy, 'dy'), f32(x, 'x'), f32(weight, 'weight'), f32(rstd, 'rstd'), rows, channels),
    qaloraLinearForward: (y, x, rows, layer, saved) => addon.qaloraLinearForward(f32(y, 'y'), f32(x, 'x'), rows, nativeLinearLayer(layer, saved, rows)),
    qaloraLinearBackward: (dx, dy, rows, layer, saved) =>
      addon.qaloraLinearBackward(f32(dx, 'dx'), f32(dy, 'dy'), rows, nativeLinearLayer(layer, saved, rows)),
    ropeForward: rope(addon, 1),
    ropeBackward: rope(addon, -1),
    ...attention(addon),
    swigluForward: (out, gate, up, count) => addon.swigluForward(f32(out, 'out'), f32(gate, 'gate'), f32(up, 'up'), count),
    swigluBackward: (dGate, dUp, dOut, gate, up, count) =>
      addon.swigluBackward(f32(dGate, 'dGate'), f32(dUp, 'dUp'), f32(dOut, 'dOut'), f32(gate, 'gate'), f32(up, 'up'), count),
    lmHeadForward: (logits, x, classifier, rows, channels, vocab) =>
      addon.lmHeadForward(f32(logits, 'logits'), f32(x, 'x'), f32(classifier, 'classifier'), rows, channels, vocab),
    lmHeadBackward: (dx, dLogits, classifier, rows, channels, vocab) =>
      addon.lmHeadBackward(f32(dx, 'dx'), f32(dLogits, 'dLogits'), f32(classifier, 'classifier'), rows, channels, vocab),
    crossEntropyForward: (probs, logits, targets, mask, rows, vocab): CrossEntropyResult =>
      addon.crossEntropyForward(f32(probs, 'probs'), f32(logits, 'logits'), int32(targets), maskOf(mask), rows, vocab),
    crossEntropyBackward: (dLogits, probs, targets, mask, rows, vocab, dLoss = 1) =>
      addon.crossEntropyBackward(f32(dLogits, 'dLogits'), f32(probs, 'probs'), int32(targets), maskOf(mask), rows, vocab, dLoss),
  };
}
