// The device port (../device-port.ts) of the webgpu backend, over its op runner: one call is one
// Job (one compute pass, one submit, no wait). What a kernel writes stays on the device — the
// runner tracks the host arrays whose newest values are there until the ops' syncToHost — so
// outputs are resident arrays, scratch is pooled, and accumulating is the `accumulate` op kernel.
// The compiled kernels here are the f32 ones: host arrays are bound as they are.
import type { ManifestKernel } from '../../backends/manifest.ts';
import type { StatsWording } from '../compiled-linear.ts';
import type { DeviceCall, DevicePort, DeviceTensor } from '../device-port.ts';
import type { CompiledWgslKernel } from './compiled-kernels.ts';
import type { Floats } from '../typescript/floats.ts';
import { f32 } from './host-arrays.ts';
import { keepScales, packParts } from '../kernel-buffers.ts';
import type { OpRunner } from './op-runner.ts';

/** How the webgpu backend's report line names where the linear calls ran. */
export const WEBGPU_WORDING: StatsWording = { backend: 'webgpu', compiled: 'the compiled kernels', fallback: 'the op kernels' };

const tensor = (buffer: GPUBuffer): DeviceTensor => buffer as unknown as DeviceTensor;
const buffer = (t: DeviceTensor): GPUBuffer => t as unknown as GPUBuffer;

export function webGpuPort(runner: OpRunner, compiled: readonly CompiledWgslKernel[]): DevicePort {
  const byName = new Map(compiled.map((k) => [k.manifest.kernel, k]));
  const kernelOf = (kernel: ManifestKernel): CompiledWgslKernel => {
    const found = byName.get(kernel.kernel);
    if (found === undefined) throw new Error(`kernel ${kernel.kernel} is not one of this port's`);
    return found;
  };
  return {
    name: 'webgpu',
    kernels: compiled.map((k) => k.manifest),
    call(): DeviceCall {
      const job = runner.job();
      return {
        frozen: (owner, layout, build) => tensor(job.frozen(owner as Float32Array, { name: layout, build: () => build() })),
        input: (_kernel, binding, values) => tensor(job.input(f32(values as Floats, binding))),
        packed: (_kernel, binding, parts) => tensor(job.input(f32(packParts(parts), binding))),
        dropoutMultipliers: (_kernel, binding, mask, p, shape) => tensor(job.input(f32(keepScales(mask, shape.rows * shape.width, p), binding))),
        output: (_kernel, binding, host) => tensor(job.output(f32(host, binding))),
        scratch: (_kernel, _binding, shape) => tensor(job.scratch(shape.rows * shape.width)),
        accumulate(host, _kernel, binding, from, offset = 0) {
          job.dispatch('accumulate', [job.inout(f32(host, binding)), buffer(from)], [host.length, offset], host.length);
        },
        dispatch(kernel, tokens, buffers, scalars) {
          job.dispatchCompiled(kernelOf(kernel), tokens, Object.fromEntries(Object.entries(buffers).map(([name, t]) => [name, buffer(t)])), scalars);
        },
        run: () => job.run(),
      };
    },
  };
}
