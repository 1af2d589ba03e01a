// The device port: the small interface a GPU backend implements so that the spec's compiled
// kernels run on it (compiled-linear.ts is written once over it; WebGPU and CUDA implement it).
// A port holds frozen weights, inputs, outputs and scratch on its device and dispatches a
// manifest kernel; one op's work is one DeviceCall, submitted by run().
//
// Device residency is a property of the port, typed: a DeviceTensor is a handle the host cannot
// read. What the host gave as an output or accumulated into is the host's again only when the
// port says so — after run() on a port that copies results back (CUDA), or after the ops'
// syncToHost on one that keeps them on the device between ops (WebGPU) — so the host arrays
// handed to output() and accumulate() must not be touched until then.
import type { ManifestKernel } from '../backends/manifest.ts';
import type { DropoutDraws } from './typescript/dropout-draws.ts';
import type { Floats } from './typescript/floats.ts';

declare const onDevice: unique symbol;

/** A buffer on the device, shaped for one binding of one call: not an array the host may touch. */
export interface DeviceTensor {
  readonly [onDevice]: true;
}

/** Rows × width values of a host array as a binding holds them (the binding may pad its rows). */
export interface Activations {
  readonly rows: number;
  readonly width: number;
}

export interface DeviceCall {
  /**
   * A frozen weight in the layout a kernel binding wants, built and uploaded on its first use and
   * kept: `owner` (a host array that never changes) and `layout` name it.
   */
  frozen(owner: object, layout: string, build: () => Float32Array | Uint32Array): DeviceTensor;
  /** Host values for a binding of `kernel` to read. */
  input(kernel: ManifestKernel, binding: string, values: ArrayLike<number>, shape: Activations): DeviceTensor;
  /**
   * Arrays packed back to back into one binding of `kernel` for it to read (adapterWeights: A
   * then B) — packed where their newest values are, which for adapters an optimizer on the
   * device updates is the device.
   */
  packed(kernel: ManifestKernel, binding: string, parts: readonly Floats[]): DeviceTensor;
  /**
   * For a binding of `kernel` that it overwrites with `parts` packed back to back (adapter_grad's
   * dA|dB): the parts' own device storage, where the port keeps them so and they hold zeros now
   * (gradients just zeroed) — written in place, with nothing to accumulate. Undefined otherwise,
   * and absent on a port that keeps no such storage: then the caller accumulates from a scratch.
   */
  packedOutput?(kernel: ManifestKernel, binding: string, parts: readonly Floats[]): DeviceTensor | undefined;
  /**
   * The dropout multipliers a binding of `kernel` reads for `mask`'s draws with drop probability
   * p (ones without a mask): `keepScales` on the host and uploaded, or computed on the device
   * where the port can (the cuda backend's dropout model op).
   */
  dropoutMultipliers(kernel: ManifestKernel, binding: string, mask: DropoutDraws | undefined, p: number, shape: Activations): DeviceTensor;
  /** A host array for a binding of `kernel` to overwrite; it holds the results once the port hands it back. */
  output(kernel: ManifestKernel, binding: string, host: Floats, shape: Activations): DeviceTensor;
  /** Device-only scratch for a binding of `kernel`. */
  scratch(kernel: ManifestKernel, binding: string, shape: Activations): DeviceTensor;
  /** `host[i] += from[offset + i]` for i < host.length, `from` being scratch of `kernel`'s `binding`. */
  accumulate(host: Floats, kernel: ManifestKernel, binding: string, from: DeviceTensor, offset?: number): void;
  /** Every entry point of `kernel` for T = `tokens`, buffers by binding name, then the run-time scalars. */
  dispatch(kernel: ManifestKernel, tokens: number, buffers: Readonly<Record<string, DeviceTensor>>, scalars: { readonly tokens: number; readonly adapterScale: number }): void;
  /** Submits the call; a port that copies results back has done so when this settles. */
  run(): void | Promise<void>;
}

export interface DevicePort {
  /** In reports: 'cuda', 'webgpu'. */
  readonly name: string;
  /** The kernels this port can launch (what it was given, in manifest form). */
  readonly kernels: readonly ManifestKernel[];
  call(): DeviceCall;
}
