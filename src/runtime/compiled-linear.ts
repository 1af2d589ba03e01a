// The QA-LoRA linear layers on the spec's compiled kernels, written once over a device port
// (device-port.ts) and used by every GPU backend: the kernels `qalc compile` emitted for the
// layer, chosen by what they compute (linear-kernel-choice.ts) and cached per layer; the decode
// kernel when T lies in its launches' token range, the forward otherwise; the fallback ops for
// a layer no kernel fits (a dense control layer, a shape the spec does not have), counted and
// said why; one stats record and one report line. Per call:
//   forward   forward (or decode) kernel: y, u = pool(x) and v = drop(u)·A into the caller's arrays
//   backward  adapter_grad (dv and dB, then du and dA) → backward_data (dx = dy·Ŵᵀ + unpool(du))
//             → the kernels overwrite, so dx, dA and dB are accumulated from their scratch —
//               dA and dB written in place instead where the port keeps them packed and they
//               hold zeros (the cuda backend's optimizer storage: DeviceCall.packedOutput)
// The frozen weight goes to the device once, in the kernels' layout (GPTQ v1 qweight, scales
// then zeros); A and B change every step and go with each call (packed: DeviceCall.packed, which
// binds them where they are on a port that keeps them packed).
// The frozen buffers, the forward's adapter bindings and the adapter_grad step are exported for
// the cuda backend's dequantize + cuBLAS path (cuda/gemm-linear.ts), which wraps these ops.
import { elementsFor, bindingNamed, hasBinding, launchesFor, type ManifestKernel } from '../backends/manifest.ts';
import type { QuantizedWeight } from '../quant/quantized-weight.ts';
import type { DeviceCall, DevicePort, DeviceTensor } from './device-port.ts';
import { kernelQweight, packScalesAndZeros } from './kernel-buffers.ts';
import { chooseLinearKernels, type LinearKernels } from './linear-kernel-choice.ts';
import type { TrainingOps } from './ops.ts';
import { checkLength } from './typescript/floats.ts';
import type { AdapterActivations, QaLoraLinear } from './typescript/qalora-linear.ts';

export type LinearOps = Pick<TrainingOps, 'qaloraLinearForward' | 'qaloraLinearBackward'>;

export interface CompiledLinearStats {
  compiledForward: number;
  compiledBackward: number;
  fallbackForward: number;
  fallbackBackward: number;
  /** Why a layer ran on the fallback ops, one line each. */
  readonly fallbacks: Set<string>;
}

/** How a backend names where the calls ran: `cuda`, `the GPU`, `the CPU`. */
export interface StatsWording {
  readonly backend: string;
  readonly compiled: string;
  readonly fallback: string;
}

/** One line: what ran where. */
export function describeCompiledLinearStats(stats: CompiledLinearStats, wording: StatsWording): string {
  const line = `${wording.backend}: quantized linear layers on ${wording.compiled}: ${stats.compiledForward} forward and ${stats.compiledBackward} backward calls; ` +
    `on ${wording.fallback}: ${stats.fallbackForward} forward, ${stats.fallbackBackward} backward`;
  return stats.fallbacks.size === 0 ? line : `${line} (${[...stats.fallbacks].join('; ')})`;
}

export const weightOf = (layer: QaLoraLinear): QuantizedWeight => (layer.base as { readonly weight: QuantizedWeight }).weight;

/** What frozenBuffers reads of a kernel's manifest entry, per kernel: every call of a layer binds its frozen weight. */
interface FrozenBindings {
  readonly qweightElements: number;
  readonly scalesAndZeros: number;
  /** The qweight layout's name by word rows. */
  readonly qweightLayouts: Map<number, string>;
}
const frozenBindings = new WeakMap<ManifestKernel, FrozenBindings>();

function frozenBindingsOf(kernel: ManifestKernel): FrozenBindings {
  let found = frozenBindings.get(kernel);
  if (found === undefined) {
    found = { qweightElements: elementsFor(bindingNamed(kernel, 'qweight'), 0), scalesAndZeros: elementsFor(bindingNamed(kernel, 'groupScalesAndZeros'), 0), qweightLayouts: new Map() };
    frozenBindings.set(kernel, found);
  }
  return found;
}

/** The frozen buffers' layout names (the device quantizer makes them on the device under these names: cuda/device-quantize.ts). */
export const qweightLayout = (wordRows: number): string => `qweight, ${wordRows} word rows`;
export const SCALES_AND_ZEROS_LAYOUT = 'scales then zeros';

/**
 * The frozen weight as `kernel` binds it: qweight with the kernel's word rows, scales then zeros,
 * both owned by the weight itself (a weight quantized on the device holds no host arrays).
 */
export function frozenBuffers(call: DeviceCall, kernel: ManifestKernel, weight: QuantizedWeight): Record<string, DeviceTensor> {
  const bindings = frozenBindingsOf(kernel);
  const { scalesAndZeros } = bindings;
  const wordRows = bindings.qweightElements / weight.outFeatures;
  let layout = bindings.qweightLayouts.get(wordRows);
  if (layout === undefined) bindings.qweightLayouts.set(wordRows, (layout = qweightLayout(wordRows)));
  return {
    qweight: call.frozen(weight, layout, () => kernelQweight(weight, wordRows)),
    groupScalesAndZeros: call.frozen(weight, SCALES_AND_ZEROS_LAYOUT, () => {
      const packed = packScalesAndZeros(weight);
      if (packed.length !== scalesAndZeros) throw new Error(`kernel ${kernel.kernel}: groupScalesAndZeros holds ${scalesAndZeros} floats, the layer ${packed.length}`);
      return packed;
    }),
  };
}

/** A forward kernel's adapter bindings: A then B, u and v to write (saved for the backward), the dropout multipliers. */
export function adapterForwardBuffers(call: DeviceCall, forward: ManifestKernel, layer: QaLoraLinear, rows: number, saved: AdapterActivations | undefined): Record<string, DeviceTensor> {
  const { adapter } = layer;
  if (adapter === null) throw new Error('adapter bindings for a layer without an adapter');
  if (saved === undefined) throw new Error('a layer with an adapter needs activations to save');
  const weight = weightOf(layer);
  const groups = weight.inFeatures / adapter.groupSize;
  checkLength('A', adapter.a, groups * adapter.rank);
  checkLength('B', adapter.b, adapter.rank * weight.outFeatures);
  const buffers: Record<string, DeviceTensor> = {
    adapterWeights: call.packed(forward, 'adapterWeights', [adapter.a, adapter.b]),
    pooledInput: call.output(forward, 'pooledInput', saved.u, { rows, width: groups }),
    adapterActivation: call.output(forward, 'adapterActivation', saved.v, { rows, width: adapter.rank }),
  };
  if (hasBinding(forward, 'dropoutMultiplier')) {
    buffers.dropoutMultiplier = call.dropoutMultipliers(forward, 'dropoutMultiplier', saved.mask, adapter.dropout, { rows, width: groups });
  }
  return buffers;
}

/**
 * adapter_grad on dy (`outputGrad`, as the call holds it): dv and dB, then du and dA, with dA
 * and dB accumulated into the adapter's gradients. Returns du (dropout applied) for dx's unpool.
 */
export function adapterGradients(call: DeviceCall, adapterGrad: ManifestKernel, layer: QaLoraLinear, outputGrad: DeviceTensor, rows: number, saved: AdapterActivations | undefined): DeviceTensor {
  const grads = adapterGradientBuffers(call, adapterGrad, layer, outputGrad, rows, saved);
  call.dispatch(adapterGrad, rows, grads.buffers, { tokens: rows, adapterScale: layer.adapter!.scaling });
  accumulateAdapterGradients(call, adapterGrad, layer, grads);
  return grads.buffers.pooledInputGrad!;
}

export interface AdapterGradientBuffers {
  readonly buffers: Record<string, DeviceTensor>;
  /** adapterWeightGrads is the adapter's own gradient storage (DeviceCall.packedOutput): nothing to accumulate. */
  readonly inPlace: boolean;
}

/**
 * adapter_grad's tensors by binding name: dy, the saved u and v (and dropout multipliers), A|B
 * packed, and the scratches it writes (dv, du, dA|dB — or dA|dB in place), which its two entry
 * points share.
 */
export function adapterGradientBuffers(call: DeviceCall, adapterGrad: ManifestKernel, layer: QaLoraLinear, outputGrad: DeviceTensor, rows: number, saved: AdapterActivations | undefined): AdapterGradientBuffers {
  const { adapter } = layer;
  if (adapter === null) throw new Error('adapter_grad for a layer without an adapter');
  if (saved === undefined) throw new Error('a layer with an adapter needs the activations its forward saved');
  const groups = weightOf(layer).inFeatures / adapter.groupSize;
  const inPlace = call.packedOutput?.(adapterGrad, 'adapterWeightGrads', [adapter.gradA, adapter.gradB]);
  const grads: Record<string, DeviceTensor> = {
    outputGrad,
    pooledInput: call.input(adapterGrad, 'pooledInput', saved.u, { rows, width: groups }),
    adapterActivation: call.input(adapterGrad, 'adapterActivation', saved.v, { rows, width: adapter.rank }),
    adapterWeights: call.packed(adapterGrad, 'adapterWeights', [adapter.a, adapter.b]),
    adapterActivationGrad: call.scratch(adapterGrad, 'adapterActivationGrad', { rows, width: adapter.rank }),
    pooledInputGrad: call.scratch(adapterGrad, 'pooledInputGrad', { rows, width: groups }),
    adapterWeightGrads: inPlace ?? call.scratch(adapterGrad, 'adapterWeightGrads', { rows: 1, width: adapter.a.length + adapter.b.length }),
  };
  if (hasBinding(adapterGrad, 'dropoutMultiplier')) {
    grads.dropoutMultiplier = call.dropoutMultipliers(adapterGrad, 'dropoutMultiplier', saved.mask, adapter.dropout, { rows, width: groups });
  }
  return { buffers: grads, inPlace: inPlace !== undefined };
}

/** dA and dB, as adapter_grad wrote them (dA then dB in one scratch), added into the layer's gradients — unless it wrote them in place. */
export function accumulateAdapterGradients(call: DeviceCall, adapterGrad: ManifestKernel, layer: QaLoraLinear, grads: AdapterGradientBuffers): void {
  if (grads.inPlace) return;
  const adapter = layer.adapter!;
  const weightGrads = grads.buffers.adapterWeightGrads!;
  call.accumulate(adapter.gradA, adapterGrad, 'adapterWeightGrads', weightGrads, 0);
  call.accumulate(adapter.gradB, adapterGrad, 'adapterWeightGrads', weightGrads, adapter.a.length);
}

export interface CompiledLinearOps extends LinearOps {
  readonly stats: CompiledLinearStats;
  /** The kernels the layer runs (chosen once, cached), or why none fit. */
  kernelsOf(layer: QaLoraLinear): LinearKernels<ManifestKernel> | string;
}

export function compiledLinearOps(port: DevicePort, fallback: LinearOps): CompiledLinearOps {
  const stats: CompiledLinearStats = { compiledForward: 0, compiledBackward: 0, fallbackForward: 0, fallbackBackward: 0, fallbacks: new Set() };
  const chosen = new WeakMap<QaLoraLinear, LinearKernels<ManifestKernel> | string>();
  const kernelsOf = (layer: QaLoraLinear) => {
    let found = chosen.get(layer);
    if (found === undefined) {
      found = chooseLinearKernels(port.kernels, (k) => k, layer);
      chosen.set(layer, found);
    }
    return found;
  };

  return {
    stats,
    kernelsOf,

    qaloraLinearForward(y, x, rows, layer, saved?: AdapterActivations) {
      const found = kernelsOf(layer);
      if (typeof found === 'string') {
        stats.fallbacks.add(found);
        stats.fallbackForward++;
        return fallback.qaloraLinearForward(y, x, rows, layer, saved);
      }
      const { adapter } = layer;
      const weight = weightOf(layer);
      const K = weight.inFeatures, N = weight.outFeatures;
      checkLength('x', x, rows * K);
      checkLength('y', y, rows * N);
      const { decode } = found;
      const kernel = decode !== undefined && launchesFor(decode, rows) !== undefined ? decode : found.forward;
      const call = port.call();
      const buffers: Record<string, DeviceTensor> = {
        input: call.input(kernel, 'input', x, { rows, width: K }),
        ...frozenBuffers(call, kernel, weight),
        output: call.output(kernel, 'output', y, { rows, width: N }),
      };
      if (adapter !== null) Object.assign(buffers, adapterForwardBuffers(call, kernel, layer, rows, saved));
      call.dispatch(kernel, rows, buffers, { tokens: rows, adapterScale: adapter?.scaling ?? 0 });
      stats.compiledForward++;
      return call.run();
    },

    qaloraLinearBackward(dx, dy, rows, layer, saved?: AdapterActivations) {
      const found = kernelsOf(layer);
      if (typeof found === 'string') {
        stats.fallbacks.add(found);
        stats.fallbackBackward++;
        return fallback.qaloraLinearBackward(dx, dy, rows, layer, saved);
      }
      const { adapter } = layer;
      const weight = weightOf(layer);
      const K = weight.inFeatures, N = weight.outFeatures;
      checkLength('dx', dx, rows * K);
      checkLength('dy', dy, rows * N);
      const { backwardData, adapterGrad } = found;
      const call = port.call();
      const outputGrad = call.input(backwardData, 'outputGrad', dy, { rows, width: N });
      const inputGrad = call.scratch(backwardData, 'inputGrad', { rows, width: K });
      const data: Record<string, DeviceTensor> = { outputGrad, ...frozenBuffers(call, backwardData, weight), inputGrad };
      if (adapter !== null && adapterGrad !== undefined) {
        data.pooledInputGrad = adapterGradients(call, adapterGrad, layer, outputGrad, rows, saved);
      }
      call.dispatch(backwardData, rows, data, { tokens: rows, adapterScale: adapter?.scaling ?? 0 });
      call.accumulate(dx, backwardData, 'inputGrad', inputGrad);
      stats.compiledBackward++;
      return call.run();
    },
  };
}
