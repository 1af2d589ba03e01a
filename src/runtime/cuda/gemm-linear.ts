// The quantized linear layers at training sizes on cuBLAS: the fused kernels dequantize Ŵ in
// registers for every token tile and run ~3× slower than cuBLAS at T = 2048–4096, so a call with
// that many tokens dequantizes Ŵ once into a scratch (the compiled dequantize kernel) and
// multiplies there with the port's GEMM. Smaller calls (decode, short batches) keep the fused
// forward / decode / backward_data kernels of compiled-linear.ts, which this wraps; so does a
// port without a GEMM, a layer without a dequantize kernel, and QALC_CUDA_LINEAR=fused.
//
//   forward   u = pool(x), v = drop(u)·A      the forward kernel's u/v prologue, launched alone
//             Ŵ = dequantize(codes)           [K, N] in the activation type, into the scratch
//             y = x·Ŵ                         GEMM, y in the forward kernel's output encoding
//             y += σ·v·B                      GEMM with beta = 1 (B in the activation type)
//   backward  dv, dB, du, dA                  adapter_grad, as the fused path runs it
//             Ŵ = dequantize(codes)           again: no layer keeps its Ŵ (peak memory)
//             dx += dy·Ŵᵀ                     GEMM with beta = 1, straight into dx's float32 rows
//             dx += c·du·U                    GEMM with beta = 1, U [L, K] the 0/1 group matrix,
//                                             c the pooling factor: unpool(du) without a kernel
//
// Why two GEMMs for y rather than one over [x | σv]·[Ŵ ; B]: the stacked form needs x and v in
// one [T, K + r] matrix, and x is the previous op's array (rows of K), so stacking costs a copy
// of x (T·K reads and writes) to save the second GEMM's read-modify-write of y (T·N of each) —
// no gain for K ≈ N, and more code. The same holds for dx: folding unpool into the first GEMM
// would copy dy next to du.
//
// dx is accumulated in float32 by the GEMMs themselves (beta = 1), so the fused path's bf16
// scratch and its accumulate kernel are not needed; y stays in the forward kernel's encoding so
// that the step's resident activations keep their size and later ops see what the fused path
// leaves. One scratch, as large as the largest layer's Ŵ, serves every call: the launches and
// GEMMs run in order on one stream, so a call's dequantize waits for the previous call's GEMMs.
import { bindingNamed, elementsFor, shapeFor, type ManifestKernel } from '../../backends/manifest.ts';
import { poolingFactor } from '../../reference/adapter.ts';
import { adapterForwardBuffers, adapterGradients, frozenBuffers, weightOf, type CompiledLinearOps, type CompiledLinearStats, type LinearOps } from '../compiled-linear.ts';
import type { DeviceTensor } from '../device-port.ts';
import { describeLayer, type LinearKernels } from '../linear-kernel-choice.ts';
import { checkLength } from '../typescript/floats.ts';
import type { QaLoraLinear } from '../typescript/qalora-linear.ts';
import type { CudaDevicePort, DeviceBuffer, DeviceMatrix, GemmCall } from './cuda.ts';
import { float32, type DeviceArrays, type Layout } from './device-arrays.ts';
import { bytesPerElement, encodeRows, type ActivationType } from './host-data.ts';
import { prologueOf } from './manifest-launch.ts';
import type { ResidentCall, ResidentPort } from './resident-port.ts';

/** QALC_CUDA_LINEAR: `fused` never takes the GEMM path, `gemm` takes it at every T, `auto` from GEMM_MIN_TOKENS. */
export type LinearPath = 'fused' | 'gemm' | 'auto';

/**
 * From this many tokens a call takes the GEMM path (auto). The dequantize kernel is a fixed
 * cost per call: 430 µs for 4096×11008 on the H200 in blocks of 64 (bench-6578e52), 165 µs in
 * blocks of 256 (1781d13's profiled 7B run); the GEMM saves (1.62 − 0.51) ms per 4096 tokens of
 * that layer's forward against the fused kernel, so the forward breaks even near T ≈ 600 now,
 * the backward earlier. 2048 was set from the 430 µs and the crossover has not been measured;
 * a dequantize kernel near its floor (~30 µs) would bring it to ~256.
 */
export const GEMM_MIN_TOKENS = 2048;

/** The path QALC_CUDA_LINEAR names (unset: auto); any other value is refused, naming the three. */
export function linearPathOf(value: string | undefined): LinearPath {
  if (value === undefined || value === '') return 'auto';
  if (value === 'fused' || value === 'gemm' || value === 'auto') return value;
  throw new RangeError(`QALC_CUDA_LINEAR=${value}: expected fused, gemm or auto`);
}

export interface GemmLinearStats extends CompiledLinearStats {
  /** Of the compiled calls, those on dequantize + cuBLAS. */
  gemmForward: number;
  gemmBackward: number;
  /** Why a layer at a GEMM-sized T stayed on the fused kernels, one line each. */
  readonly fusedReasons: Set<string>;
  /** The path asked for, or `no GEMM` when the port has none (then every call is fused). */
  readonly path: LinearPath | 'no GEMM';
  readonly minTokens: number;
}

export interface GemmLinearOps extends LinearOps {
  readonly stats: GemmLinearStats;
  /** cuBLAS calls so far (the dequantize and prologue launches are the port's). */
  readonly gemms: () => number;
}

export interface GemmLinearOptions {
  readonly path: LinearPath;
  /** auto's threshold; GEMM_MIN_TOKENS unless a test or benchmark says otherwise. */
  readonly minTokens?: number;
}

export function gemmLinearOps(fused: CompiledLinearOps, port: ResidentPort, arrays: DeviceArrays, driver: CudaDevicePort, options: GemmLinearOptions): GemmLinearOps {
  const minTokens = options.minTokens ?? GEMM_MIN_TOKENS;
  // The fused ops' record, extended: one stats record for the layer, whichever path a call took.
  const stats: GemmLinearStats = Object.assign(fused.stats, {
    gemmForward: 0, gemmBackward: 0, fusedReasons: new Set<string>(), path: driver.gemm === undefined ? 'no GEMM' as const : options.path, minTokens,
  });
  let gemms = 0;
  const gemm = (call: GemmCall) => {
    driver.gemm!(call);
    gemms++;
  };
  const gemmSized = (rows: number) => driver.gemm !== undefined && options.path !== 'fused' && (options.path === 'gemm' || rows >= minTokens);

  /** Per layer, what served() found: its kernels and K, N, or that the fused ops keep it (and why, for the report). */
  type Served = LinearKernels<ManifestKernel> & { readonly dequantize: ManifestKernel; readonly K: number; readonly N: number };
  const servedBy = new WeakMap<QaLoraLinear, Served | { readonly fusedBecause: string | undefined }>();
  /** The layer's kernels and K, N when the GEMM path serves this call, else undefined (and why, for the report). */
  const served = (rows: number, layer: QaLoraLinear): Served | undefined => {
    if (!gemmSized(rows)) return undefined;
    let found = servedBy.get(layer);
    if (found === undefined) servedBy.set(layer, (found = servingOf(layer)));
    if ('fusedBecause' in found) {
      if (found.fusedBecause !== undefined) stats.fusedReasons.add(found.fusedBecause);
      return undefined;
    }
    return found;
  };
  const servingOf = (layer: QaLoraLinear): Served | { readonly fusedBecause: string | undefined } => {
    const found = fused.kernelsOf(layer);
    if (typeof found === 'string') return { fusedBecause: undefined }; // the fused ops' fallback says why
    const why = found.dequantize === undefined ? 'no dequantize kernel'
      : layer.adapter !== null && prologueOf(found.forward) === undefined ? 'its forward kernel has no u/v prologue (no tensor-core variant)'
      : undefined;
    if (why !== undefined) return { fusedBecause: `${describeLayer(layer)}: ${why}` };
    const { inFeatures: K, outFeatures: N } = weightOf(layer);
    return { ...found, dequantize: found.dequantize!, K, N };
  };

  // One Ŵ scratch for every layer: as large as the largest dequantize kernel's output.
  const dequantizeKernels = port.kernels.filter((k) => k.role === 'dequantize');
  const scratchBytes = Math.max(0, ...dequantizeKernels.map((k) => {
    const binding = bindingNamed(k, 'weight');
    return elementsFor(binding, 0) * bytesPerElement(binding.elementType);
  }));
  let scratch: DeviceBuffer | undefined;

  /** The dequantize kernel's output binding as a layout (per kernel: it never changes). */
  const weightLayouts = new WeakMap<ManifestKernel, Layout>();
  const weightLayoutOf = (kernel: ManifestKernel): Layout => {
    let layout = weightLayouts.get(kernel);
    if (layout === undefined) {
      const binding = bindingNamed(kernel, 'weight');
      const [rows, columns] = shapeFor(binding, 0) as [number, number];
      weightLayouts.set(kernel, (layout = { encoding: binding.elementType as ActivationType, rows, width: columns, stride: columns }));
    }
    return layout;
  };

  /** Ŵ of the layer [K, N] in the scratch, dequantized now; with the frozen buffers it read. */
  const dequantized = (call: ResidentCall, kernel: ManifestKernel, layer: QaLoraLinear) => {
    scratch ??= arrays.allocate(scratchBytes);
    const frozen = frozenBuffers(call, kernel, weightOf(layer));
    const weight = call.bind(scratch, weightLayoutOf(kernel));
    call.dispatch(kernel, 0, { ...frozen, weight }, { tokens: 0, adapterScale: 0 });
    return { frozen, weight: call.matrix(weight) };
  };

  // U [L, K]: U[k, i] = 1 where input i is in group k; frozen per shape, and its matrix kept.
  const unpoolMatrices = new Map<string, DeviceMatrix>();
  const unpoolMatrix = (groups: number, K: number, type: DeviceMatrix['type']): DeviceMatrix => {
    const key = `${groups}×${K} ${type}`;
    let matrix = unpoolMatrices.get(key);
    if (matrix === undefined) {
      const buffer = arrays.frozen(unpoolMatrices, `unpool ${key}`, () => {
        const ones = new Float32Array(groups * K);
        const g = K / groups;
        for (let i = 0; i < K; i++) ones[Math.floor(i / g) * K + i] = 1;
        return encodeRows(ones, { encoding: type, rows: groups, width: K, stride: K });
      });
      unpoolMatrices.set(key, (matrix = { buffer, type, rows: groups, columns: K }));
    }
    return matrix;
  };

  return {
    stats,
    gemms: () => gemms,

    qaloraLinearForward(y, x, rows, layer, saved) {
      const found = served(rows, layer);
      if (found === undefined) return fused.qaloraLinearForward(y, x, rows, layer, saved);
      const { adapter } = layer, { forward, K, N } = found;
      checkLength('x', x, rows * K);
      checkLength('y', y, rows * N);
      const call = port.call();
      const input = call.input(forward, 'input', x, { rows, width: K });
      const output = call.output(forward, 'output', y, { rows, width: N });
      const weight = dequantized(call, found.dequantize, layer);
      let adapterActivation: DeviceTensor | undefined;
      if (adapter !== null) {
        const buffers = adapterForwardBuffers(call, forward, layer, rows, saved);
        adapterActivation = buffers.adapterActivation;
        // The prologue reads x, A and the multipliers and writes u and v; every launch of the
        // kernel takes all its bindings, so the codes and y are bound too, untouched.
        call.prologue(forward, rows, { input, ...weight.frozen, output, ...buffers }, { tokens: rows, adapterScale: adapter.scaling });
      }
      gemm({ a: call.matrix(input), b: weight.weight, out: call.matrix(output) });
      if (adapter !== null && adapterActivation !== undefined) {
        const v = call.matrix(adapterActivation);
        const b = arrays.read(float32(adapter.b, 'B'), { encoding: v.type, rows: adapter.rank, width: N, stride: N });
        gemm({ a: v, b: { buffer: b, type: v.type, rows: adapter.rank, columns: N }, out: call.matrix(output), alpha: adapter.scaling, beta: 1 });
      }
      stats.compiledForward++;
      stats.gemmForward++;
      return call.run();
    },

    qaloraLinearBackward(dx, dy, rows, layer, saved) {
      const found = served(rows, layer);
      if (found === undefined) return fused.qaloraLinearBackward(dx, dy, rows, layer, saved);
      const { adapter } = layer, { K, N } = found;
      checkLength('dx', dx, rows * K);
      checkLength('dy', dy, rows * N);
      const call = port.call();
      const outputGrad = call.input(found.backwardData, 'outputGrad', dy, { rows, width: N });
      const inputGrad: DeviceMatrix = { buffer: arrays.update(float32(dx, 'dx')), type: 'f32', rows, columns: K };
      if (adapter !== null && found.adapterGrad !== undefined) {
        const du = call.matrix(adapterGradients(call, found.adapterGrad, layer, outputGrad, rows, saved));
        gemm({ a: du, b: unpoolMatrix(du.columns, K, du.type), out: inputGrad, alpha: poolingFactor(adapter.pooling, adapter.groupSize), beta: 1 });
      }
      const weight = dequantized(call, found.dequantize, layer);
      gemm({ a: call.matrix(outputGrad), b: weight.weight, transposeB: true, out: inputGrad, beta: 1 });
      stats.compiledBackward++;
      stats.gemmBackward++;
      return call.run();
    },
  };
}

/** The report's words on the two paths: how many calls took dequantize + cuBLAS, and why others at its sizes did not. */
export function describeLinearPaths(stats: GemmLinearStats): string {
  const { path } = stats;
  const when = path === 'no GEMM' ? 'the port has no GEMM' : path === 'auto' ? `QALC_CUDA_LINEAR=auto: from T = ${stats.minTokens}` : `QALC_CUDA_LINEAR=${path}`;
  const line = `of those, on dequantize + cuBLAS: ${stats.gemmForward} forward, ${stats.gemmBackward} backward (${when}); on the fused kernels: ` +
    `${stats.compiledForward - stats.gemmForward} forward, ${stats.compiledBackward - stats.gemmBackward} backward`;
  return stats.fusedReasons.size === 0 ? line : `${line} (${[...stats.fusedReasons].join('; ')})`;
}
