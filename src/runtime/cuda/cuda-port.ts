// The device port (../device-port.ts) of the cuda backend, over the driver binding: inputs are
// encoded to their binding's element type (bf16/fp16 activations, f32 adapter weights; rows
// padded to the binding's row width) and uploaded, kernels launched as the manifest's launches
// say (manifest-launch.ts), and at
// run() the stream is synchronized and every output and accumulation is copied back into its
// host array. Frozen weights stay on the device, uploaded once; everything else comes from a
// pool of device buffers that returns to the pool when the call has run.
import { bindingNamed, elementsFor, type ManifestKernel } from '../../backends/manifest.ts';
import type { Activations, DeviceCall, DevicePort, DeviceTensor } from '../device-port.ts';
import type { StatsWording } from '../compiled-linear.ts';
import type { Floats } from '../typescript/floats.ts';
import type { CudaDevicePort, DeviceBuffer } from './cuda.ts';
import { loadManifestKernels } from './manifest-launch.ts';
import { keepScales, packParts } from '../kernel-buffers.ts';
import { bindingLayout } from './binding-layout.ts';
import { BufferPool } from './buffer-pool.ts';
import { bytesPerElement, decodeRows, encodeRows, type ActivationType } from './host-data.ts';
import type { CudaKernelImage } from './kernels.ts';

/** How the cuda backend's report line names where the linear calls ran. */
export const CUDA_WORDING: StatsWording = { backend: 'cuda', compiled: 'the GPU', fallback: 'the CPU' };

/** A tensor of one call: its device buffer and how its host values are laid out in it. */
interface CudaTensor {
  readonly buffer: DeviceBuffer;
  readonly type: ActivationType | 'u32';
  readonly shape: Activations;
  /** Elements between row starts on the device (the binding's last dimension). */
  readonly stride: number;
}

const tensor = (t: CudaTensor): DeviceTensor => t as unknown as DeviceTensor;
const unwrap = (t: DeviceTensor): CudaTensor => t as unknown as CudaTensor;
const bufferOf = (t: DeviceTensor): DeviceBuffer => unwrap(t).buffer;

export interface CudaPort extends DevicePort {
  /** Kernel launches so far (for reports). */
  readonly launches: () => number;
}

export function cudaPort(driver: CudaDevicePort, images: readonly CudaKernelImage[]): CudaPort {
  const kernels = loadManifestKernels(driver, images);
  const frozen = new WeakMap<object, Map<string, CudaTensor>>();
  const pool = new BufferPool();
  let launches = 0;

  /** The smallest pooled buffer of at least `bytes`, or a new one (sizes rounded up to a power of two). */
  const take = (bytes: number): DeviceBuffer => {
    return pool.take(bytes) ?? driver.alloc(2 ** Math.ceil(Math.log2(Math.max(bytes, 256))));
  };

  return {
    name: 'cuda',
    kernels: images.map((i) => i.manifest),
    launches: () => launches,
    call(): DeviceCall {
      const taken: DeviceBuffer[] = [];
      const copyBack: (() => void)[] = [];
      const tensorFor = (kernel: ManifestKernel, name: string, shape: Activations): CudaTensor => {
        const { encoding: type, stride } = bindingLayout(kernel, name, shape);
        const buffer = take(Math.max(shape.rows * stride, elementsFor(bindingNamed(kernel, name), shape.rows)) * bytesPerElement(type));
        taken.push(buffer);
        return { buffer, type, shape, stride };
      };
      /** Downloads `t` and hands each host-visible value (row-major, padding dropped) to `store`. */
      const download = (t: CudaTensor, store: (index: number, value: number) => void) => {
        const { rows, width } = t.shape;
        const host = new Uint8Array(rows * t.stride * bytesPerElement(t.type));
        t.buffer.download(host);
        decodeRows(t.type as ActivationType, host, rows, width, t.stride, store);
      };
      return {
        frozen(owner, layout, build) {
          let layouts = frozen.get(owner);
          if (layouts === undefined) frozen.set(owner, (layouts = new Map()));
          let t = layouts.get(layout);
          if (t === undefined) {
            const values = build();
            const buffer = driver.alloc(values.byteLength);
            buffer.upload(values);
            t = { buffer, type: values instanceof Uint32Array ? 'u32' : 'f32', shape: { rows: 1, width: values.length }, stride: values.length };
            layouts.set(layout, t);
          }
          return tensor(t);
        },
        input(kernel, name, values, shape) {
          const t = tensorFor(kernel, name, shape);
          t.buffer.upload(encodeRows(values, { encoding: t.type as ActivationType, rows: shape.rows, width: shape.width, stride: t.stride }));
          return tensor(t);
        },
        packed(kernel, name, parts) {
          const values = packParts(parts);
          return this.input(kernel, name, values, { rows: 1, width: values.length });
        },
        dropoutMultipliers(kernel, name, mask, p, shape) {
          return this.input(kernel, name, keepScales(mask, shape.rows * shape.width, p), shape);
        },
        output(kernel, name, host: Floats, shape) {
          const t = tensorFor(kernel, name, shape);
          copyBack.push(() => download(t, (i, v) => { host[i] = v; }));
          return tensor(t);
        },
        scratch: (kernel, name, shape) => tensor(tensorFor(kernel, name, shape)),
        accumulate(host, _kernel, _name, from, offset = 0) {
          const t = unwrap(from);
          // `download` drops row padding and decodes any element type; `offset` picks a part.
          const end = offset + host.length;
          copyBack.push(() => download(t, (i, v) => { if (i >= offset && i < end) host[i - offset] += v; }));
        },
        dispatch(kernel, tokens, buffers, scalars) {
          launches += kernels.dispatch(kernel, tokens, buffers, bufferOf, scalars);
        },
        run() {
          driver.synchronize();
          for (const copy of copyBack) copy();
          for (const buffer of taken) pool.give(buffer);
        },
      };
    },
  };
}
