// The device port (../device-port.ts) of the cuda backend when every op runs on the GPU
// (device-ops.ts): the compiled linear kernels read and write the device arrays
// (device-arrays.ts) instead of host copies. An input that an earlier op left on the device is
// bound where it is, or converted there to the binding's encoding and row stride (bf16 or fp16
// activations); an output becomes the array's resident copy in the kernel's encoding; an
// accumulation is the accumulate kernel; dropout multipliers are the dropout op's, computed on
// the device from the layer's draws, several layers' in one launch (dropout-window.ts). Adapters an optimizer on the device keeps in
// its packed storage (packed-parameters.ts) are bound there: A|B where the optimizer updates it,
// dA|dB written in place while the gradients hold zeros. run() queues nothing more and waits for
// nothing: the host sees values only through the ops' syncToHost. Beyond the device port, a call
// hands out its tensors as GEMM operands and launches the forward's u/v prologue alone — what the
// dequantize + cuBLAS path (gemm-linear.ts) builds on.
import type { ManifestKernel } from '../../backends/manifest.ts';
import type { Activations, DeviceCall, DeviceTensor } from '../device-port.ts';
import type { Floats } from '../typescript/floats.ts';
import type { DropoutDraws } from '../typescript/dropout-draws.ts';
import type { DeviceBuffer, CudaDevicePort, DeviceMatrix } from './cuda.ts';
import { dense, float32, type DeviceArrays, type Layout } from './device-arrays.ts';
import { bytesPerElement } from './host-data.ts';
import { keepScales } from '../kernel-buffers.ts';
import { bindingLayout } from './binding-layout.ts';
import type { DropoutWindow } from './dropout-window.ts';
import type { CudaKernelImage } from './kernels.ts';
import { loadManifestKernels, type LoadedKernels } from './manifest-launch.ts';
import type { CudaPort } from './cuda-port.ts';

interface ResidentTensor {
  readonly buffer: DeviceBuffer;
  readonly layout: Layout;
}

const tensor = (t: ResidentTensor): DeviceTensor => t as unknown as DeviceTensor;
const unwrap = (t: DeviceTensor): ResidentTensor => t as unknown as ResidentTensor;

export interface ResidentCall extends DeviceCall {
  /** A tensor of this call (an input, output or scratch: rows × width values) as a GEMM operand, in its binding's encoding and row stride. */
  matrix(t: DeviceTensor): DeviceMatrix;
  /** A buffer the caller keeps (a scratch of its own), holding `layout`, as a tensor of this call. */
  bind(buffer: DeviceBuffer, layout: Layout): DeviceTensor;
  /** Only `kernel`'s u/v prologue (manifest-launch.ts), on the call's buffers by binding name. */
  prologue(kernel: ManifestKernel, tokens: number, buffers: Readonly<Record<string, DeviceTensor>>, scalars: { readonly tokens: number; readonly adapterScale: number }): void;
  /** Only the launches of one of `kernel`'s entry points (manifest-launch.ts), on the call's buffers by binding name. */
  entry(kernel: ManifestKernel, entryPoint: string, tokens: number, buffers: Readonly<Record<string, DeviceTensor>>, scalars: { readonly tokens: number; readonly adapterScale: number }): void;
}

export interface ResidentPort extends CudaPort {
  call(): ResidentCall;
}

const bufferOf = (t: DeviceTensor): DeviceBuffer => unwrap(t).buffer;
/** The frozen buffers' layout: unread (the kernels know their shape). */
const FROZEN_LAYOUT: Layout = { encoding: 'f32', rows: 1, width: 0, stride: 0 };

/** A binding that holds `parts` back to back, as float32: its layout. */
function packedLayout(kernel: ManifestKernel, name: string, parts: readonly Floats[]): Layout {
  let length = 0;
  for (const part of parts) length += part.length;
  const layout = bindingLayout(kernel, name, { rows: 1, width: length });
  if (layout.encoding !== 'f32') throw new Error(`kernel ${kernel.kernel}: packed binding ${name} is ${layout.encoding}, not f32`);
  return layout;
}

/**
 * One call's tensors over the device arrays. A class, not an object of closures: the linear
 * layers open two calls per layer and step, and each closure was an allocation (and, under tsx, a
 * defineProperty for its name).
 */
class ResidentDeviceCall implements ResidentCall {
  constructor(private readonly port: ResidentPortState) {}

  frozen(owner: object, layout: string, build: () => ArrayBufferView): DeviceTensor {
    return tensor({ buffer: this.port.arrays.frozen(owner, layout, build), layout: FROZEN_LAYOUT });
  }

  input(kernel: ManifestKernel, name: string, values: ArrayLike<number>, shape: Activations): DeviceTensor {
    const layout = bindingLayout(kernel, name, shape);
    const host = values instanceof Float32Array ? values : Float32Array.from(values);
    return tensor({ buffer: this.port.arrays.read(host, layout), layout });
  }

  packed(kernel: ManifestKernel, name: string, parts: readonly Floats[]): DeviceTensor {
    const { arrays } = this.port;
    const layout = packedLayout(kernel, name, parts);
    // Parts placed back to back in one storage (an optimizer's A and B) are bound there, each
    // brought there first where the host holds its newest values (an upload; no launch).
    const span = arrays.placedSpan(parts as Float32Array[]);
    if (span !== undefined) {
      for (const part of parts) arrays.read(float32(part, name), dense(part.length));
      return tensor({ buffer: span, layout });
    }
    // Else each part where its newest values are, copied into one temporary in order.
    const buffer = arrays.take(layout.width * 4);
    let offset = 0;
    for (const part of parts) {
      buffer.copyFrom(arrays.read(float32(part, name), dense(part.length)), part.length * 4, offset * 4);
      offset += part.length;
    }
    return tensor({ buffer, layout });
  }

  packedOutput(kernel: ManifestKernel, name: string, parts: readonly Floats[]): DeviceTensor | undefined {
    const { arrays } = this.port;
    const hosts = parts.map((part) => float32(part, name));
    if (!hosts.every((host) => arrays.isZero(host))) return undefined;
    const span = arrays.placedSpan(hosts);
    if (span === undefined) return undefined;
    const layout = packedLayout(kernel, name, parts);
    // The kernel's results are the parts' newest values from now on.
    for (const host of hosts) arrays.write(host, dense(host.length));
    return tensor({ buffer: span, layout });
  }

  dropoutMultipliers(kernel: ManifestKernel, name: string, mask: DropoutDraws | undefined, p: number, shape: Activations): DeviceTensor {
    const layout = bindingLayout(kernel, name, shape);
    const { dropout } = this.port;
    if (dropout === undefined || layout.encoding !== 'f32' || layout.stride !== layout.width) {
      return this.input(kernel, name, keepScales(mask, shape.rows * shape.width, p), shape);
    }
    return tensor({ buffer: dropout.multipliers(mask, p, shape.rows * shape.width), layout });
  }

  output(kernel: ManifestKernel, name: string, host: Floats, shape: Activations): DeviceTensor {
    const layout = bindingLayout(kernel, name, shape);
    return tensor({ buffer: this.port.arrays.write(float32(host, name), layout), layout });
  }

  scratch(kernel: ManifestKernel, name: string, shape: Activations): DeviceTensor {
    const layout = bindingLayout(kernel, name, shape);
    return tensor({ buffer: this.port.arrays.take(layout.rows * layout.stride * bytesPerElement(layout.encoding)), layout });
  }

  accumulate(host: Floats, _kernel: ManifestKernel, binding: string, from: DeviceTensor, offset = 0): void {
    const t = unwrap(from);
    this.port.arrays.accumulate(float32(host, binding), t.buffer, t.layout, offset);
  }

  dispatch(kernel: ManifestKernel, tokens: number, buffers: Readonly<Record<string, DeviceTensor>>, scalars: { readonly tokens: number; readonly adapterScale: number }): void {
    this.port.launches += this.port.kernels.dispatch(kernel, tokens, buffers, bufferOf, scalars);
  }

  prologue(kernel: ManifestKernel, tokens: number, buffers: Readonly<Record<string, DeviceTensor>>, scalars: { readonly tokens: number; readonly adapterScale: number }): void {
    this.port.kernels.prologue(kernel, tokens, buffers, bufferOf, scalars);
    this.port.launches++;
  }

  entry(kernel: ManifestKernel, entryPoint: string, tokens: number, buffers: Readonly<Record<string, DeviceTensor>>, scalars: { readonly tokens: number; readonly adapterScale: number }): void {
    this.port.launches += this.port.kernels.entry(kernel, entryPoint, tokens, buffers, bufferOf, scalars);
  }

  bind(buffer: DeviceBuffer, layout: Layout): DeviceTensor {
    return tensor({ buffer, layout });
  }

  matrix(t: DeviceTensor): DeviceMatrix {
    const { buffer, layout } = unwrap(t);
    return { buffer, type: layout.encoding, rows: layout.rows, columns: layout.width, ld: layout.stride };
  }

  run(): void {
    this.port.arrays.release();
  }
}

/** What the port's calls share. */
interface ResidentPortState {
  readonly kernels: LoadedKernels;
  readonly arrays: DeviceArrays;
  readonly dropout: DropoutWindow | undefined;
  launches: number;
}

/** `dropout`: the multipliers computed on the device, several layers a launch (dropout-window.ts); without it they are expanded on the host and uploaded. */
export function residentPort(driver: CudaDevicePort, images: readonly CudaKernelImage[], arrays: DeviceArrays, dropout?: DropoutWindow): ResidentPort {
  const state: ResidentPortState = { kernels: loadManifestKernels(driver, images), arrays, dropout, launches: 0 };
  // One call object serves every call: a call holds no state of its own (its temporaries are the arrays' until run()).
  const call = new ResidentDeviceCall(state);
  return {
    name: 'cuda',
    kernels: images.map((i) => i.manifest),
    launches: () => state.launches,
    call: () => call,
  };
}
