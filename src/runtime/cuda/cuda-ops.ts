// The cuda backend as a TrainingOps table: the quantized QA-LoRA linear layers run the kernels
// `qalc compile` emitted for the spec, on the GPU; every other op (norms, RoPE, attention,
// SwiGLU, lm_head, cross-entropy) is the fallback table's — the native CPU ops — for now.
//
// Per linear call, synchronously:
//   forward   x → bf16/fp16 (the spec's activation type) → forward kernel (decode kernel when T
//             is in its range) → y, u = pool(x), v = u·A back as float32
//   backward  dy, u, v → adapter_grad (dv and dB, then du and dA) → backward_data
//             (dx = dy·Ŵᵀ + unpool(du)) → dx += …, gradA += dA, gradB += dB
// The frozen weight of each layer (GPTQ v1 qweight, float scales and zeros) is packed and
// uploaded on its first use and kept on the device; it never changes while training. A and B
// change every step and are uploaded with each call (L·r + r·N floats).
//
// Kernels are chosen by what they compute — role, K, N, bits, group, rank, pooling, dropout —
// read from the manifest's constants and bindings, and launched through the manifest's
// launch list (symbol, block, grid formula for T). A layer no kernel fits (a dense control
// layer, say) runs on the fallback ops; `stats` counts both, and says why.
import type { Floats } from '../../train/ops/floats.ts';
import type { AdapterActivations, QaLoraLinear } from '../../train/ops/qalora-linear.ts';
import { chooseLinearKernels, describeLayer, hasBinding as hasManifestBinding, type LinearKernels } from '../linear-kernel-choice.ts';
import type { TrainingOps } from '../../train/ops/training-ops.ts';
import type { QuantizedWeight } from '../../quant/quantized-weight.ts';
import { f32, pointer, u32, type CudaDevicePort, type CudaFunction, type DeviceBuffer } from './cuda.ts';
import { keepScales, kernelQweight, packAdapterWeights, packScalesAndZeros } from '../kernel-buffers.ts';
import { bytesPerElement, decodeActivations, encodeActivations, type ActivationType } from './host-data.ts';
import type { CudaKernelSet } from './kernels.ts';
import { entryPointsOf, evaluateFormula, launchFor, type CudaManifestBinding, type CudaManifestKernel } from './launch.ts';

interface LoadedKernel {
  readonly manifest: CudaManifestKernel;
  readonly functions: ReadonlyMap<string, CudaFunction>;
  /** Bindings that are buffers (binding 0, the run-time scalars, is not), in parameter order. */
  readonly buffers: readonly CudaManifestBinding[];
}

/** The kernels one layer uses, and the activation type they read and write. */
interface LayerKernels extends LinearKernels<LoadedKernel> {
  readonly activation: ActivationType;
}

export interface CudaOpsStats {
  gpuForward: number;
  gpuBackward: number;
  cpuForward: number;
  cpuBackward: number;
  /** Why a layer shape ran on the CPU, one line each. */
  readonly fallbacks: Set<string>;
}

export interface CudaOps extends TrainingOps {
  readonly stats: CudaOpsStats;
  /** Kernel launches so far (for reports). */
  readonly launches: () => number;
}

function elementsOf(binding: CudaManifestBinding, tokens: number): number {
  const dims = binding.shape.replace(/^\[|\]$/g, '').split(',').map((d) => d.trim()).filter((d) => d !== '');
  return dims.reduce((n, d) => n * evaluateFormula(d, tokens), 1);
}

function lastDim(binding: CudaManifestBinding, tokens: number): number {
  const dims = binding.shape.replace(/^\[|\]$/g, '').split(',').map((d) => d.trim());
  return evaluateFormula(dims[dims.length - 1]!, tokens);
}

const hasBinding = (k: LoadedKernel, name: string) => hasManifestBinding(k.manifest, name);

export function cudaOps(driver: CudaDevicePort, kernels: Pick<CudaKernelSet, 'kernels'>, fallback: TrainingOps): CudaOps {
  const loaded: LoadedKernel[] = kernels.kernels.map(({ manifest, fatbin }) => {
    const module = driver.loadModule(fatbin);
    const symbols = manifest.launches.flatMap((l) => (l.prologue ? [l.prologue.symbol, l.symbol] : [l.symbol]));
    const functions = new Map(symbols.map((symbol) => [symbol, module.function(symbol)]));
    const buffers = [...manifest.bindings].filter((b) => b.elementType !== 'params').sort((a, b) => a.binding - b.binding);
    return { manifest, functions, buffers };
  });
  const stats: CudaOpsStats = { gpuForward: 0, gpuBackward: 0, cpuForward: 0, cpuBackward: 0, fallbacks: new Set() };
  let launches = 0;

  const layerKernels = new WeakMap<QaLoraLinear, LayerKernels | string>();
  const kernelsOf = (layer: QaLoraLinear): LayerKernels | string => {
    let found = layerKernels.get(layer);
    if (found !== undefined) return found;
    const chosen = chooseLinearKernels(loaded, (k) => k.manifest, layer);
    if (typeof chosen === 'string') found = chosen;
    else {
      const type = chosen.forward.buffers.find((b) => b.name === 'input')?.elementType;
      if (type !== 'bf16' && type !== 'f16' && type !== 'f32') found = `${describeLayer(layer)}: activations of type ${String(type)}`;
      else found = { ...chosen, activation: type };
    }
    layerKernels.set(layer, found);
    return found;
  };

  // Device buffers: the frozen weights per quantized weight, everything else scratch by binding
  // name (grow-only; one call at a time, so one set serves every layer).
  const frozen = new WeakMap<QuantizedWeight, { qweight: DeviceBuffer; scalesAndZeros: DeviceBuffer }>();
  const scratch = new Map<string, DeviceBuffer>();
  const staging = new Map<string, Uint8Array>();
  const scratchBuffer = (name: string, bytes: number): DeviceBuffer => {
    let buffer = scratch.get(name);
    if (buffer === undefined || buffer.bytes < bytes) {
      buffer?.free();
      buffer = driver.alloc(Math.max(bytes, 2 * (buffer?.bytes ?? 0)));
      scratch.set(name, buffer);
    }
    return buffer;
  };
  const stagingBytes = (name: string, bytes: number): Uint8Array => {
    let host = staging.get(name);
    if (host === undefined || host.byteLength < bytes) {
      host = new Uint8Array(Math.max(bytes, 2 * (host?.byteLength ?? 0)));
      staging.set(name, host);
    }
    return host.subarray(0, bytes);
  };
  const bindingOf = (k: LoadedKernel, name: string): CudaManifestBinding => {
    const b = k.buffers.find((x) => x.name === name);
    if (b === undefined) throw new Error(`kernel ${k.manifest.kernel} has no binding ${name}`);
    return b;
  };
  const bytesOf = (b: CudaManifestBinding, tokens: number) => elementsOf(b, tokens) * bytesPerElement(b.elementType);

  const frozenOf = (k: LoadedKernel, weight: QuantizedWeight) => {
    let buffers = frozen.get(weight);
    if (buffers === undefined) {
      const qweightBinding = bindingOf(k, 'qweight');
      const qweight = kernelQweight(weight, elementsOf(qweightBinding, 0) / weight.outFeatures);
      const scalesAndZeros = packScalesAndZeros(weight);
      if (scalesAndZeros.length !== elementsOf(bindingOf(k, 'groupScalesAndZeros'), 0)) {
        throw new Error(`kernel ${k.manifest.kernel}: groupScalesAndZeros holds ${elementsOf(bindingOf(k, 'groupScalesAndZeros'), 0)} floats, the layer ${scalesAndZeros.length}`);
      }
      buffers = { qweight: driver.alloc(qweight.byteLength), scalesAndZeros: driver.alloc(scalesAndZeros.byteLength) };
      buffers.qweight.upload(qweight);
      buffers.scalesAndZeros.upload(scalesAndZeros);
      frozen.set(weight, buffers);
    }
    return buffers;
  };

  /** Encodes `rows` rows of `width` values into binding `name` (zero-padded to the binding's row width) and uploads it. */
  const uploadActivations = (k: LoadedKernel, name: string, type: ActivationType, values: ArrayLike<number>, rows: number, width: number) => {
    const b = bindingOf(k, name);
    const stride = lastDim(b, rows);
    const host = stagingBytes(name, bytesOf(b, rows));
    if (stride === width) encodeActivations(type, values, host, rows * width);
    else {
      const padded = new Float32Array(rows * stride);
      for (let r = 0; r < rows; r++) for (let i = 0; i < width; i++) padded[r * stride + i] = values[r * width + i]!;
      encodeActivations(type, padded, host);
    }
    scratchBuffer(name, host.byteLength).upload(host);
  };
  /** Downloads binding `name` and hands each of the first `width` values of every row to `store`. */
  const downloadActivations = (k: LoadedKernel, name: string, type: ActivationType, rows: number, width: number, store: (index: number, value: number) => void) => {
    const b = bindingOf(k, name);
    const stride = lastDim(b, rows);
    const host = stagingBytes(name, bytesOf(b, rows));
    scratchBuffer(name, host.byteLength).download(host);
    decodeActivations(type, host, rows * stride, (index, value) => {
      const r = Math.floor(index / stride), i = index - r * stride;
      if (i < width) store(r * width + i, value);
    });
  };
  const uploadFloats = (k: LoadedKernel, name: string, values: Float32Array) => {
    const b = bindingOf(k, name);
    if (b.elementType !== 'f32') throw new Error(`kernel ${k.manifest.kernel}: ${name} is ${b.elementType}, expected f32`);
    scratchBuffer(name, values.byteLength).upload(values);
  };
  const dropoutMultipliers = (k: LoadedKernel, layer: QaLoraLinear, saved: AdapterActivations, rows: number, groups: number) => {
    if (!hasBinding(k, 'dropoutMultiplier')) return;
    const multipliers = keepScales(saved.mask, rows * groups, layer.adapter!.dropout);
    const type = bindingOf(k, 'dropoutMultiplier').elementType;
    if (type === 'f32') uploadFloats(k, 'dropoutMultiplier', multipliers);
    else uploadActivations(k, 'dropoutMultiplier', type as ActivationType, multipliers, rows, groups);
  };

  const run = (k: LoadedKernel, tokens: number, adapterScale: number, frozenBuffers?: { qweight: DeviceBuffer; scalesAndZeros: DeviceBuffer }) => {
    const parameters = k.buffers.map((b) => {
      if (b.name === 'qweight' && frozenBuffers) return pointer(frozenBuffers.qweight);
      if (b.name === 'groupScalesAndZeros' && frozenBuffers) return pointer(frozenBuffers.scalesAndZeros);
      return pointer(scratchBuffer(b.name, bytesOf(b, tokens)));
    });
    for (const entryPoint of entryPointsOf(k.manifest)) {
      const launch = launchFor(k.manifest, entryPoint, tokens);
      if (launch === undefined) throw new Error(`kernel ${k.manifest.kernel} has no launch of ${entryPoint} for T = ${tokens}`);
      const args = [...parameters, u32(tokens), f32(adapterScale)];
      if (launch.prologue) {
        driver.launch(k.functions.get(launch.prologue.symbol)!, launch.prologue.grid, launch.prologue.block, 0, args);
        launches++;
      }
      driver.launch(k.functions.get(launch.symbol)!, launch.grid, launch.block, 0, args);
      launches++;
    }
  };

  const qaloraLinearForward = (y: Floats, x: Floats, rows: number, layer: QaLoraLinear, saved?: AdapterActivations): void | Promise<void> => {
    const kernelsForLayer = kernelsOf(layer);
    if (typeof kernelsForLayer === 'string') {
      stats.fallbacks.add(kernelsForLayer);
      stats.cpuForward++;
      return fallback.qaloraLinearForward(y, x, rows, layer, saved);
    }
    const { adapter } = layer;
    const weight = (layer.base as { weight: QuantizedWeight }).weight;
    const K = weight.inFeatures, N = weight.outFeatures;
    const decode = kernelsForLayer.decode;
    const k = decode !== undefined && entryPointsOf(decode.manifest).every((e) => launchFor(decode.manifest, e, rows)) ? decode : kernelsForLayer.forward;
    const type = kernelsForLayer.activation;
    uploadActivations(k, 'input', type, x, rows, K);
    if (adapter !== null) {
      if (saved === undefined) throw new Error('a layer with an adapter needs activations to save');
      uploadFloats(k, 'adapterWeights', packAdapterWeights(adapter.a, adapter.b));
      dropoutMultipliers(k, layer, saved, rows, K / adapter.groupSize);
    }
    run(k, rows, adapter?.scaling ?? 0, frozenOf(k, weight));
    driver.synchronize();
    downloadActivations(k, 'output', type, rows, N, (i, v) => { y[i] = v; });
    if (adapter !== null && saved !== undefined) {
      const groups = K / adapter.groupSize;
      downloadActivations(k, 'pooledInput', type, rows, groups, (i, v) => { saved.u[i] = v; });
      downloadActivations(k, 'adapterActivation', type, rows, adapter.rank, (i, v) => { saved.v[i] = v; });
    }
    stats.gpuForward++;
  };

  const qaloraLinearBackward = (dx: Floats, dy: Floats, rows: number, layer: QaLoraLinear, saved?: AdapterActivations): void | Promise<void> => {
    const kernelsForLayer = kernelsOf(layer);
    if (typeof kernelsForLayer === 'string') {
      stats.fallbacks.add(kernelsForLayer);
      stats.cpuBackward++;
      return fallback.qaloraLinearBackward(dx, dy, rows, layer, saved);
    }
    const { adapter } = layer;
    const weight = (layer.base as { weight: QuantizedWeight }).weight;
    const K = weight.inFeatures, N = weight.outFeatures;
    const type = kernelsForLayer.activation;
    const { backwardData, adapterGrad } = kernelsForLayer;
    uploadActivations(backwardData, 'outputGrad', type, dy, rows, N);
    let gradients: Float32Array | undefined;
    if (adapter !== null && adapterGrad !== undefined) {
      if (saved === undefined) throw new Error('a layer with an adapter needs the activations its forward saved');
      const groups = K / adapter.groupSize;
      uploadActivations(adapterGrad, 'pooledInput', type, saved.u, rows, groups);
      uploadActivations(adapterGrad, 'adapterActivation', type, saved.v, rows, adapter.rank);
      uploadFloats(adapterGrad, 'adapterWeights', packAdapterWeights(adapter.a, adapter.b));
      dropoutMultipliers(adapterGrad, layer, saved, rows, groups);
      run(adapterGrad, rows, adapter.scaling);
      gradients = new Float32Array(adapter.a.length + adapter.b.length);
    }
    run(backwardData, rows, adapter?.scaling ?? 0, frozenOf(backwardData, weight));
    driver.synchronize();
    downloadActivations(backwardData, 'inputGrad', type, rows, K, (i, v) => { dx[i] += v; });
    if (adapter !== null && gradients !== undefined) {
      scratch.get('adapterWeightGrads')!.download(gradients);
      const { gradA, gradB } = adapter;
      for (let i = 0; i < gradA.length; i++) gradA[i] += gradients[i]!;
      for (let i = 0; i < gradB.length; i++) gradB[i] += gradients[gradA.length + i]!;
    }
    stats.gpuBackward++;
  };

  return { ...fallback, name: `cuda+${fallback.name}`, qaloraLinearForward, qaloraLinearBackward, stats, launches: () => launches };
}

/** One line: what ran where. */
export function describeStats(stats: CudaOpsStats): string {
  const line = `cuda: quantized linear layers on the GPU: ${stats.gpuForward} forward and ${stats.gpuBackward} backward calls; ` +
    `on the CPU: ${stats.cpuForward} forward, ${stats.cpuBackward} backward`;
  return stats.fallbacks.size === 0 ? line : `${line} (${[...stats.fallbacks].join('; ')})`;
}
