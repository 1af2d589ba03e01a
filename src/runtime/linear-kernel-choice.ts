// Which of a spec's compiled kernels computes a given linear layer, read from the manifest alone
// (role, the constants the emitter wrote, and the names of the bindings): shapes, bits, group,
// rank, pooling and dropout must all agree. The cuda and webgpu runtimes both choose through
// here, so a layer runs the same kernels on either, and a layer no kernel fits gets one
// reason, worded the same, for running on the fallback ops instead.
import { hasBinding, type ManifestKernel } from '../backends/manifest.ts';
import { poolingFactor } from '../reference/adapter.ts';
import { inFeaturesOf, outFeaturesOf, type QaLoraLinear } from './typescript/qalora-linear.ts';

/** What the choice reads of a manifest entry (both targets' entries have it). */
export type ManifestKernelLike = Pick<ManifestKernel, 'kernel' | 'role' | 'constants' | 'bindings'>;

/** The roles a training runtime launches; the rest (merge, pack, quantize, dequantize) are not loaded. */
export const TRAINING_ROLES: readonly string[] = ['forward', 'decode', 'backward_data', 'adapter_grad'];

/**
 * The kernels one layer runs; decode is optional (the forward covers every T), and so is
 * dequantize (Ŵ into memory once, for a runtime that multiplies on a BLAS library: the cuda
 * backend's dequantize + cuBLAS path, src/runtime/cuda/gemm-linear.ts).
 */
export interface LinearKernels<K> {
  readonly forward: K;
  readonly decode: K | undefined;
  readonly backwardData: K;
  readonly adapterGrad: K | undefined;
  readonly dequantize: K | undefined;
}

const constant = (k: ManifestKernelLike, name: string): number | undefined => {
  const value = k.constants[name];
  return typeof value === 'number' ? value : undefined;
};


/** `172×64 4-bit, group 43, adapter rank 4`: a layer as a reason names it. */
export function describeLayer(layer: QaLoraLinear): string {
  const { base, adapter } = layer;
  const what = base.kind === 'quantized' ? `${base.weight.bits}-bit, group ${base.weight.groupSize}` : 'dense';
  const K = inFeaturesOf(base), N = outFeaturesOf(base);
  return `${K}×${N} ${what}${adapter ? `, adapter rank ${adapter.rank}${adapter.dropout > 0 ? `, dropout ${adapter.dropout}` : ''}` : ', no adapter'}`;
}

/** Whether `k` computes `role` for this layer: shapes, bits, group, rank, pooling, dropout. */
export function kernelFits(k: ManifestKernelLike, role: string, layer: QaLoraLinear): boolean {
  const { base, adapter } = layer;
  if (k.role !== role || base.kind !== 'quantized') return false;
  const w = base.weight;
  if (role === 'dequantize') {
    // Ŵ alone: the adapter is not its business; unpadded rows only (training does not pad).
    return constant(k, 'PADDED_IN_FEATURES') === w.inFeatures && constant(k, 'OUT_FEATURES') === w.outFeatures &&
      constant(k, 'BITS') === w.bits && constant(k, 'GROUP_SIZE') === w.groupSize;
  }
  if (role === 'adapter_grad') {
    return adapter !== null && constant(k, 'OUT_FEATURES') === w.outFeatures && constant(k, 'GROUPS') === w.inFeatures / adapter.groupSize &&
      constant(k, 'RANK') === adapter.rank && (adapter.dropout > 0) === hasBinding(k, 'dropoutMultiplier');
  }
  if (constant(k, 'IN_FEATURES') !== w.inFeatures || constant(k, 'OUT_FEATURES') !== w.outFeatures) return false;
  if (constant(k, 'BITS') !== w.bits || constant(k, 'GROUP_SIZE') !== w.groupSize) return false;
  const adapterBinding = role === 'backward_data' ? 'pooledInputGrad' : 'adapterWeights';
  if ((adapter !== null) !== hasBinding(k, adapterBinding)) return false;
  if (adapter === null) return true;
  const factor = constant(k, 'POOLING_FACTOR');
  if (factor === undefined || Math.abs(factor - poolingFactor(adapter.pooling, adapter.groupSize)) > 1e-9 * Math.abs(factor)) return false;
  if (role === 'backward_data') return true;
  return constant(k, 'RANK') === adapter.rank && (adapter.dropout > 0) === hasBinding(k, 'dropoutMultiplier');
}

/** The kernels `layer` runs, or why it cannot run on them (one line, naming the layer). */
export function chooseLinearKernels<K>(kernels: readonly K[], manifestOf: (k: K) => ManifestKernelLike, layer: QaLoraLinear): LinearKernels<K> | string {
  const pick = (role: string) => kernels.find((k) => kernelFits(manifestOf(k), role, layer));
  if (layer.base.kind !== 'quantized') return `${describeLayer(layer)}: not quantized (the kernels dequantize codes)`;
  const forward = pick('forward'), backwardData = pick('backward_data');
  const adapterGrad = layer.adapter === null ? undefined : pick('adapter_grad');
  if (forward === undefined) return `${describeLayer(layer)}: no forward kernel in the spec's compiled kernels`;
  if (backwardData === undefined) return `${describeLayer(layer)}: no backward_data kernel`;
  if (layer.adapter !== null && adapterGrad === undefined) return `${describeLayer(layer)}: no adapter_grad kernel`;
  return { forward, decode: pick('decode'), backwardData, adapterGrad, dequantize: pick('dequantize') };
}
