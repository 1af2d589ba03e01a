// The device port (../device-port.ts) of the cuda backend, over the driver binding: inputs are
// encoded to their binding's element type (bf16/fp16 activations, f32 adapter weights; rows
// padded to the binding's row width) and uploaded, kernels launched as the manifest's launches
// say (a launch's prologue first; buffers in binding order, then T and adapterScale), and at
// run() the stream is synchronized and every output and accumulation is copied back into its
// host array. Frozen weights stay on the device, uploaded once; everything else comes from a
// pool of device buffers that returns to the pool when the call has run.
import { bindingNamed, dispatchFor, elementsFor, launchesFor, shapeFor, type CudaManifestKernel, type ManifestBinding, type ManifestKernel } from '../../backends/manifest.ts';
import { evaluateDispatch } from '../../ir/size-expr.ts';
import type { Activations, DeviceCall, DevicePort, DeviceTensor } from '../device-port.ts';
import type { StatsWording } from '../compiled-linear.ts';
import type { Floats } from '../typescript/floats.ts';
import { f32, pointer, u32, type CudaDevicePort, type CudaFunction, type DeviceBuffer } from './cuda.ts';
import { bytesPerElement, decodeActivations, encodeActivations, type ActivationType } from './host-data.ts';
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

function activationType(kernel: ManifestKernel, binding: ManifestBinding): ActivationType {
  const type = binding.elementType;
  if (type !== 'bf16' && type !== 'f16' && type !== 'f32') throw new Error(`kernel ${kernel.kernel}: ${binding.name} is ${type}, not an activation type`);
  return type;
}

export interface CudaPort extends DevicePort {
  /** Kernel launches so far (for reports). */
  readonly launches: () => number;
}

export function cudaPort(driver: CudaDevicePort, images: readonly CudaKernelImage[]): CudaPort {
  const loaded = new Map(images.map(({ manifest, fatbin }) => {
    const module = driver.loadModule(fatbin);
    const symbols = manifest.launches.flatMap((l) => (l.prologue ? [l.prologue.symbol, l.symbol] : [l.symbol]));
    return [manifest.kernel, { manifest, functions: new Map(symbols.map((symbol) => [symbol, module.function(symbol)])) }];
  }));
  const frozen = new WeakMap<object, Map<string, CudaTensor>>();
  const pool: DeviceBuffer[] = [];
  let launches = 0;

  /** The smallest pooled buffer of at least `bytes`, or a new one (sizes rounded up to a power of two). */
  const take = (bytes: number): DeviceBuffer => {
    const index = pool.reduce((best, b, i) => (b.bytes >= bytes && (best < 0 || b.bytes < pool[best]!.bytes) ? i : best), -1);
    if (index >= 0) return pool.splice(index, 1)[0]!;
    return driver.alloc(2 ** Math.ceil(Math.log2(Math.max(bytes, 256))));
  };

  return {
    name: 'cuda',
    kernels: images.map((i) => i.manifest),
    launches: () => launches,
    call(): DeviceCall {
      const taken: DeviceBuffer[] = [];
      const copyBack: (() => void)[] = [];
      const tensorFor = (kernel: ManifestKernel, name: string, shape: Activations): CudaTensor => {
        const binding = bindingNamed(kernel, name);
        const type = activationType(kernel, binding);
        // A 2-D binding [T, width'] may pad its rows (a padded K); a 1-D one is flat.
        const dims = shapeFor(binding, shape.rows);
        const stride = dims.length === 1 ? shape.width : dims.at(-1)!;
        if (stride < shape.width) throw new Error(`kernel ${kernel.kernel}: ${name} rows hold ${stride} values, the layer ${shape.width}`);
        const buffer = take(Math.max(shape.rows * stride, elementsFor(binding, shape.rows)) * bytesPerElement(type));
        taken.push(buffer);
        return { buffer, type, shape, stride };
      };
      /** Downloads `t` and hands each host-visible value (row-major, padding dropped) to `store`. */
      const download = (t: CudaTensor, store: (index: number, value: number) => void) => {
        const { rows, width } = t.shape;
        const host = new Uint8Array(rows * t.stride * bytesPerElement(t.type));
        t.buffer.download(host);
        decodeActivations(t.type as ActivationType, host, rows * t.stride, (index, value) => {
          const r = Math.floor(index / t.stride), i = index - r * t.stride;
          if (i < width) store(r * width + i, value);
        });
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
          const { rows, width } = shape;
          let padded: ArrayLike<number> = values;
          if (t.stride !== width) {
            const rowsOf = new Float32Array(rows * t.stride);
            for (let r = 0; r < rows; r++) for (let i = 0; i < width; i++) rowsOf[r * t.stride + i] = values[r * width + i]!;
            padded = rowsOf;
          }
          const host = new Uint8Array(rows * t.stride * bytesPerElement(t.type));
          encodeActivations(t.type as ActivationType, padded, host, rows * t.stride);
          t.buffer.upload(host);
          return tensor(t);
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
          const found = loaded.get(kernel.kernel);
          if (found === undefined) throw new Error(`kernel ${kernel.kernel} is not one of this port's`);
          const manifest = found.manifest as CudaManifestKernel;
          const parameters = manifest.bindings.filter((b) => b.elementType !== 'params').sort((a, b) => a.binding - b.binding).map((b) => {
            const t = buffers[b.name];
            if (t === undefined) throw new Error(`kernel ${manifest.kernel}: no buffer for binding ${b.name}`);
            return pointer(unwrap(t).buffer);
          });
          const chosen = launchesFor(manifest, tokens);
          if (chosen === undefined) throw new Error(`kernel ${manifest.kernel} has no launch for T = ${tokens}`);
          const args = [...parameters, u32(scalars.tokens), f32(scalars.adapterScale)];
          for (const launch of chosen) {
            if (launch.prologue) {
              driver.launch(found.functions.get(launch.prologue.symbol) as CudaFunction, launch.prologue.dispatch.map((d) => evaluateDispatch(d, tokens)) as [number, number, number], launch.prologue.workgroup, 0, args);
              launches++;
            }
            driver.launch(found.functions.get(launch.symbol) as CudaFunction, dispatchFor(launch, tokens), launch.workgroup, 0, args);
            launches++;
          }
        },
        run() {
          driver.synchronize();
          for (const copy of copyBack) copy();
          pool.push(...taken);
        },
      };
    },
  };
}
