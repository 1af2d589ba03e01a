// The quantized linear layers at training sizes on cuBLAS: the fused kernels dequantize Ŵ in
// registers for every token tile and run ~3× slower than cuBLAS at T = 2048–4096, so a call with
// that many tokens dequantizes Ŵ once into a scratch (the compiled dequantize kernel) and
// multiplies there with the port's GEMM. Smaller calls (decode, short batches) keep the fused
// forward / decode / backward_data kernels of compiled-linear.ts, which this wraps; so does a
// port without a GEMM, a layer without a dequantize kernel, an adapted layer when the compiled
// kernels have no unpool model op, and QALC_CUDA_LINEAR=fused.
//
//   forward   u = pool(x), v = drop(u)·A      the forward kernel's u/v prologue, launched alone
//             Ŵ = dequantize(codes)           [K, N] in the activation type, into the scratch
//             σ·B under Ŵ                     rows K … K + r of the scratch (convert's scaledToActivation)
//             [x | v]                         x, then v, copied into one [T, K + r] operand
//                                             (x not again for a layer reading the same x: k, v, up)
//             y = [x | v]·[Ŵ ; σ·B]           one GEMM, y in the forward kernel's output encoding
//   backward  dv = σ·dy·Bᵀ                    GEMM (dv in the activation type, as adapter_grad's)
//             dB += σ·vᵀ·dy                   GEMM with beta = 1 into B's float32 gradient
//             ũ = drop(u)                     the unpool op's dropPooled (the mask regenerated)
//             dA += ũᵀ·dv                     GEMM with beta = 1 into A's float32 gradient
//             dũ = dv·Aᵀ                      GEMM (A in the activation type, dũ too)
//             Ŵ = dequantize(codes)           again: no layer keeps its Ŵ (peak memory)
//             dx += dy·Ŵᵀ                     GEMM with beta = 1, straight into dx's float32 rows
//             dx += c·unpool(mask ⊙ dũ)       the unpool model op (device-unpool.ts), c the
//                                             pooling factor: dx[t, i] += c·m·dũ[t, ⌊i/g⌋]
//
// Into known zeros (DeviceArrays.overwritable: the model zero-filled dx, dA, dB and nothing has
// written them since) the first writer overwrites: dB and dA with beta = 0, dx by unpool's
// overwrite entry (dx = c·unpool(…)) before the base GEMM adds dy·Ŵᵀ with beta = 1 — the same
// passes over dx as GEMM-then-accumulate, and the same order of additions as before — or by
// that GEMM with beta = 0 for a layer without an adapter. No memset runs for any of them.
//
// Why the adapter's product is r more reduction steps of the base GEMM rather than a GEMM of its
// own (y = x·Ŵ, then y += σ·v·B with beta = 1: QALC_CUDA_ADAPTER_GEMM=separate, what this did
// until then): a GEMM of k = r = 64 is all epilogue — it reads and writes y (T·N of each) for
// 2·T·r·N flops — and cuBLAS ran it at 0.047 ms for N = 4096 and 0.071 ms for N = 11008 at
// T = 2048 on the H200 (~12 ms of a 185.7 ms 7B step), while r more steps of the base GEMM cost
// r/K of it (~1.6 % at K = 4096). The stacked form needs x and v side by side in one [T, K + r]
// matrix; x is the previous op's array (rows of K), so it is copied there (T·K reads and writes
// of 2 bytes: ~10 µs at K = 4096). The prologue reads x where it lies, so x's producers keep
// the layout the boundary gives them (activation-boundary.ts). The separate form also rounds y
// twice (x·Ŵ, then y + σ·v·B); the stacked one rounds the one float32 sum, σ·B rounded once from
// B's float32 values.
//
// dv stays a GEMM of its own: stacking it into dx's, dy·[Ŵ ; σB]ᵀ → [dx | dv], needs dx in rows
// of K + r, but dx is the model's float32 array in rows of K that the GEMM adds into (beta = 1),
// and dA and dũ want dv in the activation type: a float32 [T, K + r] temporary, dx += its first K
// columns and dv rounded from the rest would move ~2·T·(K + r)·4 bytes more (~20 µs at
// K = 4096), about dv's own GEMM (0.019 ms).
//
// Why a kernel for unpool rather than a GEMM against U [L, K], U[k, i] = 1 where input i is in
// group k (what this did until then): that GEMM, a broadcast add dressed as a matrix product, ran
// at ~7 % of HBM bandwidth on the H200 (0.64 ms for K = 11008, L = 344, T = 2048, where ~180 MB
// move: ≈ 45 µs), and U cost memory and an upload per shape. A manifest compiled before the op
// existed has no unpool kernel: its adapted layers stay on the fused kernels (the report says
// why) rather than keep the GEMM and its U alive for old compile folders — `qalc compile` again
// brings them onto this path.
//
// dx is accumulated in float32 by the GEMM (beta = 1) and the unpool kernel, so the fused path's
// bf16 scratch and its accumulate kernel are not needed; y stays in the forward kernel's encoding
// so that the step's resident activations keep their size and later ops see what the fused path
// leaves. One scratch, as large as the largest layer's Ŵ, serves every call: the launches and
// GEMMs run in order on one stream, so a call's dequantize waits for the previous call's GEMMs.
import { bindingNamed, elementsFor, shapeFor, type ManifestKernel } from '../../backends/manifest.ts';
import { poolingFactor } from '../../reference/adapter.ts';
import { adapterForwardBuffers, frozenBuffers, weightOf, type CompiledLinearOps, type CompiledLinearStats, type LinearOps } from '../compiled-linear.ts';
import type { DeviceTensor } from '../device-port.ts';
import { describeLayer, type LinearKernels } from '../linear-kernel-choice.ts';
import { checkLength, type Floats } from '../typescript/floats.ts';
import type { QaLoraLinear } from '../typescript/qalora-linear.ts';
import type { CudaDevicePort, DeviceBuffer, DeviceMatrix, GemmCall } from './cuda.ts';
import { dense, float32, type DeviceArrays, type Layout } from './device-arrays.ts';
import type { DeviceStacking } from './device-stacking.ts';
import type { DeviceUnpool } from './device-unpool.ts';
import { bytesPerElement, type ActivationType } from './host-data.ts';
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

/** QALC_CUDA_ADAPTER_GEMM: `stacked` adds the adapter as r more reduction steps of the base GEMM, `separate` as a GEMM of its own. */
export type AdapterGemm = 'stacked' | 'separate';

/** The adapter GEMM QALC_CUDA_ADAPTER_GEMM names (unset: stacked); any other value is refused, naming the two. */
export function adapterGemmOf(value: string | undefined): AdapterGemm {
  if (value === undefined || value === '') return 'stacked';
  if (value === 'stacked' || value === 'separate') return value;
  throw new RangeError(`QALC_CUDA_ADAPTER_GEMM=${value}: expected stacked or separate`);
}

/** Elements between the rows of [x | v]: K + r rounded up to 8, so every row starts 16-byte aligned for cuBLAS. */
export const stackedStride = (K: number, rank: number): number => Math.ceil((K + rank) / 8) * 8;

export interface GemmLinearStats extends CompiledLinearStats {
  /** Of the compiled calls, those on dequantize + cuBLAS. */
  gemmForward: number;
  gemmBackward: number;
  /** Of the GEMM-path forwards of adapted layers, those with the adapter stacked into the base GEMM. */
  stackedForward: number;
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
  /** The adapter's GEMM in the forward (stacked unless told). */
  readonly adapterGemm?: AdapterGemm;
}

/**
 * `unpool`: the compiled unpool op (device-unpool.ts); without it, adapted layers keep the fused
 * kernels. `stacking`: the convert op's copies (device-stacking.ts); without them (kernels
 * compiled before them), the adapter keeps a GEMM of its own.
 */
export function gemmLinearOps(
  fused: CompiledLinearOps, port: ResidentPort, arrays: DeviceArrays, driver: CudaDevicePort, unpool: DeviceUnpool | undefined, options: GemmLinearOptions,
  stacking?: DeviceStacking,
): GemmLinearOps {
  const minTokens = options.minTokens ?? GEMM_MIN_TOKENS;
  const stack = (options.adapterGemm ?? 'stacked') === 'stacked' ? stacking : undefined;
  // The fused ops' record, extended: one stats record for the layer, whichever path a call took.
  const stats: GemmLinearStats = Object.assign(fused.stats, {
    gemmForward: 0, gemmBackward: 0, stackedForward: 0, fusedReasons: new Set<string>(), path: driver.gemm === undefined ? 'no GEMM' as const : options.path, minTokens,
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
      : layer.adapter !== null && unpool === undefined ? 'the compiled kernels have no unpool model op with dropPooled (compiled before it: run qalc compile again)'
      : undefined;
    if (why !== undefined) return { fusedBecause: `${describeLayer(layer)}: ${why}` };
    const { inFeatures: K, outFeatures: N } = weightOf(layer);
    return { ...found, dequantize: found.dequantize!, K, N };
  };

  // One Ŵ scratch for every layer: as large as the largest dequantize kernel's output, with room
  // under it for σ·B of the largest rank any forward kernel has (the stacked form's r rows).
  const dequantizeKernels = port.kernels.filter((k) => k.role === 'dequantize');
  const maxRank = Math.max(0, ...port.kernels.map((k) => (k.role === 'forward' && typeof k.constants['RANK'] === 'number' ? k.constants['RANK'] : 0)));
  const scratchBytes = Math.max(0, ...dequantizeKernels.map((k) => {
    const binding = bindingNamed(k, 'weight');
    const [, columns] = shapeFor(binding, 0) as [number, number];
    return (elementsFor(binding, 0) + (stack === undefined ? 0 : maxRank * columns)) * bytesPerElement(binding.elementType);
  }));
  let scratch: DeviceBuffer | undefined;
  // And one [x | v] operand for every layer, for the same reason: rows of the widest forward
  // kernel's K + r, allocated anew only for more tokens than before (a training run has one T),
  // not the pool's, whose sizes are powers of 2.
  const widestStacked = Math.max(0, ...port.kernels.map((k) => {
    const { IN_FEATURES: K, RANK: rank } = k.constants;
    return k.role === 'forward' && typeof K === 'number' && typeof rank === 'number' ? stackedStride(K, rank) * 2 : 0;
  }));
  let stackedOperand: DeviceBuffer | undefined;
  // Whose values the operand's x columns hold: q, k and v read one x (RMSNorm's output), gate and
  // up another, and nothing else writes the operand, so k's and v's forwards (and up's) find x
  // there already and copy only their v. Valid while x's resident buffer and its write count
  // (DeviceArrays.writes) are the ones the copy read, in the same columns and rows.
  let stackedInput: { readonly host: Float32Array; readonly buffer: DeviceBuffer; readonly writes: number; readonly rows: number; readonly K: number; readonly stride: number } | undefined;
  const holdsInput = (host: Float32Array, buffer: DeviceBuffer, rows: number, K: number, stride: number) =>
    stackedInput !== undefined && stackedInput.host === host && stackedInput.buffer === buffer && arrays.residentOf(host)?.buffer === buffer
    && stackedInput.writes === arrays.writes(host) && stackedInput.rows === rows && stackedInput.K === K && stackedInput.stride === stride;
  const stackedOperandOf = (rows: number): DeviceBuffer => {
    if (stackedOperand === undefined || stackedOperand.bytes < rows * widestStacked) {
      stackedOperand = arrays.allocate(rows * widestStacked);
      stackedInput = undefined;
    }
    return stackedOperand;
  };

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

  /** A [L, r] or B [r, N] in the activation type, for the GEMMs (the optimizer keeps them in float32; the 16-bit copy is made once per update). */
  const adapterMatrix = (values: Floats, rows: number, columns: number, type: DeviceMatrix['type']): DeviceMatrix => {
    const buffer = arrays.read(float32(values, 'an adapter matrix'), { encoding: type as ActivationType, rows, width: columns, stride: columns });
    return { buffer, type, rows, columns };
  };
  const adapterB = (adapter: NonNullable<QaLoraLinear['adapter']>, N: number, type: DeviceMatrix['type']): DeviceMatrix => adapterMatrix(adapter.b, adapter.rank, N, type);

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
      if (adapter !== null && adapterActivation !== undefined && stack !== undefined) {
        // y = [x | v]·[Ŵ ; σ·B]: σ·B into the scratch's rows K …, x and v side by side in the stacked operand.
        const x16 = call.matrix(input), v = call.matrix(adapterActivation), { rank } = adapter;
        const size = bytesPerElement(v.type as ActivationType), stride = stackedStride(K, rank);
        const stacked = stackedOperandOf(rows);
        if (stacked.bytes < rows * stride * size) throw new Error(`the stacked operand holds ${stacked.bytes} bytes, [x | v] needs ${rows * stride * size}`);
        const xHost = float32(x, 'x');
        if (!holdsInput(xHost, x16.buffer, rows, K, stride)) {
          stack.columns({ buffer: stacked, type: x16.type, rows, columns: K, ld: stride }, { ...x16, columns: K });
          // Only an array's own resident buffer is known to keep its values (a converted temporary goes back to the pool).
          stackedInput = arrays.residentOf(xHost)?.buffer === x16.buffer ? { host: xHost, buffer: x16.buffer, writes: arrays.writes(xHost), rows, K, stride } : undefined;
        }
        stack.columns({ buffer: stacked, type: v.type, rows, columns: rank, ld: stride, offset: K * size }, v);
        const b = weight.weight;
        stack.scaledRows({ ...b, rows: rank, offset: (b.offset ?? 0) + K * (b.ld ?? N) * size }, arrays.read(float32(adapter.b, 'B'), dense(adapter.b.length)), adapter.scaling);
        gemm({ a: { buffer: stacked, type: x16.type, rows, columns: K + rank, ld: stride }, b: { ...b, rows: K + rank }, out: call.matrix(output) });
        stats.stackedForward++;
      } else {
        gemm({ a: call.matrix(input), b: weight.weight, out: call.matrix(output) });
      }
      if (adapter !== null && adapterActivation !== undefined && stack === undefined) {
        const v = call.matrix(adapterActivation);
        gemm({ a: v, b: adapterB(adapter, N, v.type), out: call.matrix(output), alpha: adapter.scaling, beta: 1 });
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
      const dxValues = float32(dx, 'dx');
      // Whether dx holds values to add to: not where it is known zero (then its first writer overwrites it).
      const overwriteDx = arrays.overwritable(dxValues) && (adapter === null || found.adapterGrad === undefined || unpool!.overwrite !== undefined);
      const inputGrad: DeviceMatrix = { buffer: overwriteDx ? arrays.write(dxValues, dense(dxValues.length)) : arrays.update(dxValues), type: 'f32', rows, columns: K };
      let dxAdds = !overwriteDx;
      if (adapter !== null && found.adapterGrad !== undefined) {
        // Four GEMMs on cuBLAS and two small unpool-op launches. adapter_grad's entries had
        // reduced over N (dv = dy·Bᵀ: 0.28 ms for N = 11008 at T = 2048 on the H200, 20× its
        // floors) and over the tokens in 4 blocks (dA: ~55 µs a layer, the whole entry).
        if (saved === undefined) throw new Error('a layer with an adapter needs the activations its forward saved');
        const kernel = found.adapterGrad, { rank } = adapter, groups = K / adapter.groupSize;
        const dropout = { mask: saved.mask, p: adapter.dropout };
        const dy = call.matrix(outputGrad);
        const u = call.matrix(call.input(kernel, 'pooledInput', saved.u, { rows, width: groups }));
        const v = call.matrix(call.input(kernel, 'adapterActivation', saved.v, { rows, width: rank }));
        const dv = call.matrix(call.scratch(kernel, 'adapterActivationGrad', { rows, width: rank }));
        const du = call.matrix(call.scratch(kernel, 'pooledInputGrad', { rows, width: groups }));
        const dropped: DeviceMatrix = { buffer: arrays.take(rows * groups * bytesPerElement(u.type as ActivationType)), type: u.type, rows, columns: groups };
        /** A gradient as the GEMM's output, and its beta: 0 into known zeros (overwritten), else 1 (added to). */
        const gradient = (host: Floats, rows: number, columns: number): { out: DeviceMatrix; beta: number } => {
          const values = float32(host, 'an adapter gradient');
          const overwrite = arrays.overwritable(values);
          return { out: { buffer: overwrite ? arrays.write(values, dense(values.length)) : arrays.update(values), type: 'f32', rows, columns }, beta: overwrite ? 0 : 1 };
        };
        // dv = σ·dy·Bᵀ; dB += σ·vᵀ·dy
        gemm({ a: dy, b: adapterB(adapter, N, dy.type), transposeB: true, out: dv, alpha: adapter.scaling });
        gemm({ a: v, transposeA: true, b: dy, ...gradient(adapter.gradB, rank, N), alpha: adapter.scaling });
        // dA += drop(u)ᵀ·dv; d drop(u) = dv·Aᵀ, which unpool turns into du (the mask) and adds to dx
        unpool!.dropPooled(dropped, u, dropout);
        gemm({ a: dropped, transposeA: true, b: dv, ...gradient(adapter.gradA, groups, rank) });
        gemm({ a: dv, b: adapterMatrix(adapter.a, groups, rank, dv.type), transposeB: true, out: du });
        const factor = poolingFactor(adapter.pooling, adapter.groupSize);
        (dxAdds ? unpool!.accumulate : unpool!.overwrite!)(inputGrad, du, adapter.groupSize, factor, dropout);
        dxAdds = true;
      }
      const weight = dequantized(call, found.dequantize, layer);
      gemm({ a: call.matrix(outputGrad), b: weight.weight, transposeB: true, out: inputGrad, beta: dxAdds ? 1 : 0 });
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
  const stacked = stats.stackedForward > 0 ? `, ${stats.stackedForward} forward with the adapter stacked into the base GEMM` : '';
  const line = `of those, on dequantize + cuBLAS: ${stats.gemmForward} forward, ${stats.gemmBackward} backward (${when}${stacked}); on the fused kernels: ` +
    `${stats.compiledForward - stats.gemmForward} forward, ${stats.compiledBackward - stats.gemmBackward} backward`;
  return stats.fusedReasons.size === 0 ? line : `${line} (${[...stats.fusedReasons].join('; ')})`;
}
