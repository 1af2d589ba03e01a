// The frozen weights quantized on the device (the ops contract's FrozenQuantizer): a projection's
// float weight goes up as a checkpoint stores it ([out, in], one staging buffer reused for every
// projection), the spec's compiled quantize kernel writes the codes (one uint32 each, a scratch
// reused too) and the scales and zeros, and its pack kernel packs the codes into GPTQ v1 qweight —
// the two buffers the linear kernels bind, adopted by the device arrays under the layouts
// compiled-linear.ts's frozenBuffers asks for, so nothing of the layer is built or uploaded again.
//
// Bit for bit the host's quantizeProjection (src/train/quantize-projection.ts): the kernel
// computes the scale, the zero and every w / s in float64 as src/quant/rtn.ts does and stores the
// scale in float32; the scale dtype's rounding (and its range check, ScaleRangeError) is
// roundScales on those float32 scales, read back and sent up again where the dtype changed them
// (fp16, bf16: 2 bytes a group each way; fp32 needs nothing).
//
// The weight handed back keeps no host arrays: q, scales and zeros are read back from the device
// each time one is asked for (an export, a merge, a cpu fallback), never at setup.
//
// QALC_CUDA_QUANTIZE=host quantizes on the host instead (for comparison); =device refuses a spec
// whose compile folder has no quantize kernels; unset, the device quantizes where it has them.
import type { CudaManifestKernel } from '../../backends/manifest.ts';
import { unpackQweight } from '../../quant/gptq-pack.ts';
import { maxCode, type QuantizedWeight } from '../../quant/quantized-weight.ts';
import { roundScales } from '../../quant/scale-dtype.ts';
import { BackendUnavailableError } from '../backend.ts';
import { qweightLayout, SCALES_AND_ZEROS_LAYOUT } from '../compiled-linear.ts';
import type { FrozenQuantization, FrozenQuantizer } from '../ops.ts';
import type { CudaDevicePort, DeviceBuffer } from './cuda.ts';
import type { DeviceArrays } from './device-arrays.ts';
import { QUANTIZE_ROLES, type CudaKernelImage } from './kernels.ts';
import { loadManifestKernels } from './manifest-launch.ts';

export type QuantizePath = 'device' | 'host' | 'auto';

/** QALC_CUDA_QUANTIZE's value: device, host, or auto (unset). */
export function quantizePathOf(value: string | undefined): QuantizePath {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'device' || value === 'host') return value;
  throw new BackendUnavailableError('cuda', `QALC_CUDA_QUANTIZE=${value}: expected device, host or auto`);
}

/**
 * The frozen quantizer over `images` (the spec's quantize and pack kernels), or undefined where
 * the host quantizes: `path` host, or auto and no quantize kernels (a compile folder from before
 * the device quantized). Throws BackendUnavailableError for `path` device without them.
 */
export function deviceFrozenQuantizer(driver: CudaDevicePort, images: readonly CudaKernelImage[], arrays: DeviceArrays, path: QuantizePath): (() => FrozenQuantizer) | undefined {
  if (path === 'host') return undefined;
  const setup = images.filter((i) => QUANTIZE_ROLES.includes(i.manifest.role));
  if (!setup.some((i) => i.manifest.role === 'quantize')) {
    if (path === 'auto') return undefined;
    throw new BackendUnavailableError('cuda', 'QALC_CUDA_QUANTIZE=device, but the compiled kernels have no quantize kernels (a compile folder from before they were emitted: run `qalc compile` again)');
  }
  return () => openQuantizer(driver, setup, arrays);
}

/** The ops table's frozenQuantizer field, present only where there is one. */
export const withFrozenQuantizer = (open: (() => FrozenQuantizer) | undefined): { frozenQuantizer?: () => FrozenQuantizer } => (open === undefined ? {} : { frozenQuantizer: open });

/** `role`'s kernel of layer `name`, compiled for its shape and quantization; a refusal naming the layer where there is none. */
function kernelOf(kernels: readonly CudaManifestKernel[], role: 'quantize' | 'pack', name: string, K: number, N: number, q: FrozenQuantization): CudaManifestKernel {
  const fits = (k: CudaManifestKernel) => {
    const c = k.constants;
    if (k.role !== role || !k.layers.includes(name) || c['PADDED_IN_FEATURES'] !== K || c['OUT_FEATURES'] !== N) return false;
    if (role === 'pack') return c['BITS'] === q.bits;
    // The quantize kernel's name carries its symmetry (share-layers.ts's roleKey).
    return c['MAX_CODE'] === maxCode(q.bits) && c['GROUP_SIZE'] === q.group && k.kernel.includes(q.symmetric ? '_sym_' : '_asym_');
  };
  const found = kernels.find(fits);
  if (found === undefined) {
    throw new BackendUnavailableError('cuda', `${name}: no compiled ${role} kernel for ${q.bits} bits, group ${q.group}, ${q.symmetric ? 'symmetric' : 'asymmetric'}, ` +
      `${K} × ${N} (run \`qalc compile\` again, or quantize on the host with QALC_CUDA_QUANTIZE=host)`);
  }
  return found;
}

function openQuantizer(driver: CudaDevicePort, images: readonly CudaKernelImage[], arrays: DeviceArrays): FrozenQuantizer {
  const kernels = loadManifestKernels(driver, images);
  const manifests = images.map((i) => i.manifest);
  /** The scratch of the biggest projection so far, reused by every smaller one; freed by close(). */
  const scratch: { staging?: DeviceBuffer; codes?: DeviceBuffer } = {};
  const scratchOf = (key: 'staging' | 'codes', bytes: number): DeviceBuffer => {
    const held = scratch[key];
    if (held !== undefined && held.bytes >= bytes) return held;
    held?.free();
    return (scratch[key] = driver.alloc(bytes));
  };
  const same = (buffer: DeviceBuffer) => buffer;
  const noScalars = { tokens: 0, adapterScale: 0 };
  return {
    quantize(name, weight, outFeatures, inFeatures, quantization) {
      const { bits, group, symmetric, scaleDtype } = quantization;
      const K = inFeatures, N = outFeatures, L = K / group;
      if (weight.length !== N * K) throw new RangeError(`${name}: the weight holds ${weight.length} floats, its shape ${N}×${K}`);
      if (!Number.isInteger(L)) throw new RangeError(`group size ${group} does not divide in_features ${K} of ${name}`);
      const quantize = kernelOf(manifests, 'quantize', name, K, N, quantization);
      const pack = kernelOf(manifests, 'pack', name, K, N, quantization);
      const wordRows = pack.constants['WORD_ROWS']!;
      const staging = scratchOf('staging', N * K * 4);
      const codes = scratchOf('codes', N * K * 4);
      const scalesAndZeros = arrays.allocate(2 * L * N * 4);
      const qweight = arrays.allocate(wordRows * N * 4);
      // The last projection's kernels may still read the scratch: a copy is ordered after them on
      // the legacy stream only, and the launches may go to a stream of their own.
      driver.synchronize();
      staging.upload(weight);
      kernels.dispatch(quantize, 0, { weight: staging, codes, groupScalesAndZeros: scalesAndZeros }, same, noScalars);
      // The kernel stored Math.fround of the float64 scale (fp32's rounding); fp16 and bf16
      // round that float32 on, as withStoredScales does (through float32), and every dtype is
      // checked for a scale of 0 or infinity (ScaleRangeError).
      const scales = new Float32Array(L * N);
      driver.synchronize();
      scalesAndZeros.download(scales);
      if (roundScales(scales, scales, scaleDtype, name, N)) scalesAndZeros.upload(scales);
      kernels.entry(pack, 'packQweight', 0, { codes, qweight }, same, noScalars);
      const held = deviceQuantizedWeight(driver, { inFeatures: K, outFeatures: N, groupSize: group, bits, storedScaleDtype: scaleDtype }, qweight, scalesAndZeros);
      arrays.adoptFrozen(held, qweightLayout(wordRows), qweight);
      arrays.adoptFrozen(held, SCALES_AND_ZEROS_LAYOUT, scalesAndZeros);
      return held;
    },
    close() {
      driver.synchronize();
      scratch.staging?.free();
      scratch.codes?.free();
      delete scratch.staging;
      delete scratch.codes;
    },
  };
}

/** A QuantizedWeight whose codes, scales and zeros stay on the device: each read of one downloads it. */
function deviceQuantizedWeight(driver: CudaDevicePort, shape: Omit<QuantizedWeight, 'q' | 'scales' | 'zeros'>, qweight: DeviceBuffer, scalesAndZeros: DeviceBuffer): QuantizedWeight {
  const { inFeatures: K, outFeatures: N, groupSize, bits } = shape;
  const groups = (K / groupSize) * N;
  const scalesAndZerosOnHost = () => {
    const values = new Float32Array(2 * groups);
    driver.synchronize();
    scalesAndZeros.download(values);
    return values;
  };
  // Enumerable getters: a spread ({ ...weight, scales }) reads them, so a copy holds host arrays.
  return Object.defineProperties({ ...shape }, {
    q: {
      enumerable: true,
      get: () => {
        const words = new Int32Array(qweight.bytes / 4);
        driver.synchronize();
        qweight.download(words);
        return unpackQweight(words.subarray(0, Math.ceil((K * bits) / 32) * N), K, N, bits);
      },
    },
    scales: { enumerable: true, get: () => Float64Array.from(scalesAndZerosOnHost().subarray(0, groups)) },
    zeros: { enumerable: true, get: () => Float64Array.from(scalesAndZerosOnHost().subarray(groups)) },
  }) as QuantizedWeight;
}
