// runKernel for WebGPU: emits the kernel's WGSL, builds a pipeline per entry point against an
// explicit bind group layout made from the manifest (so entry points that touch only some
// bindings share one layout), uploads inputs, dispatches by the manifest's formulas and reads
// every writable binding back. Nothing here decides anything the manifest does not say.
import type { LoweredKernel, LoweredProgram } from '../../../src/ir/kernel-ir.ts';
import { evaluateSize } from '../../../src/ir/size-expr.ts';
import { emitWgslKernel } from '../../../src/backends/wgsl/emit.ts';
import { dispatchFor, elementsFor, type ManifestBinding, type WgslManifestKernel } from '../../../src/backends/manifest.ts';
import { formatShape } from '../../../src/ir/size-expr.ts';
import { createStorage, dispatch, readFloat32, uploadStorage, uploadUniform } from '../../../src/runtime/webgpu/buffers.ts';
import type { WebGpuHandle } from '../../../src/runtime/webgpu/device.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../ir/f16.ts';
import type { HostData, KernelBackend, KernelRun } from '../../ir/kernel-cases.ts';

interface CompiledKernel {
  readonly manifest: WgslManifestKernel;
  readonly pipelines: ReadonlyMap<string, GPUComputePipeline>;
}

function layoutEntry(binding: ManifestBinding): GPUBindGroupLayoutEntry {
  const type: GPUBufferBindingType = binding.access === 'uniform' ? 'uniform' : binding.access === 'read' ? 'read-only-storage' : 'storage';
  return { binding: binding.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } };
}

async function compile(device: GPUDevice, program: LoweredProgram, kernel: LoweredKernel): Promise<CompiledKernel> {
  const { source, manifest } = emitWgslKernel(program, kernel);
  const module = device.createShaderModule({ code: source });
  const { messages } = await module.getCompilationInfo();
  const errors = messages.filter((m) => m.type === 'error');
  if (errors.length > 0) {
    throw new Error(errors.map((e) => `${kernel.name}.wgsl:${e.lineNum}:${e.linePos}: error: ${e.message}`).join('\n'));
  }
  const bindGroupLayout = device.createBindGroupLayout({ entries: manifest.bindings.map(layoutEntry) });
  const layout = device.createPipelineLayout({ bindGroupLayouts: [bindGroupLayout] });
  const pipelines = new Map<string, GPUComputePipeline>();
  for (const launch of manifest.launches) {
    pipelines.set(launch.entryPoint, await device.createComputePipelineAsync({ layout, compute: { module, entryPoint: launch.symbol } }));
  }
  return { manifest, pipelines };
}

function uniformBytes(manifest: WgslManifestKernel, run: KernelRun): Uint32Array {
  const words = new Uint32Array(manifest.uniforms.size / 4);
  const floats = new Float32Array(words.buffer);
  for (const field of manifest.uniforms.fields) {
    const value = field.name === 'tokens' ? run.tokens : field.name === 'adapterScale' ? run.adapterScale : undefined;
    if (value === undefined) throw new Error(`no value for uniform ${field.name}`);
    if (field.type === 'u32') words[field.offset / 4] = value;
    else floats[field.offset / 4] = value;
  }
  return words;
}

/** Host data in the binding's element type, as 32-bit words (two f16 per word). */
function toDeviceWords(binding: ManifestBinding, data: HostData): HostData {
  if (binding.elementType !== 'f16') return data;
  const halves = new Uint16Array(Math.ceil(data.length / 2) * 2);
  data.forEach((value, i) => (halves[i] = f32ToF16Bits(value)));
  return new Uint32Array(halves.buffer);
}

/** A packed binding assembled from its parts, when the caller gave all of them by name. */
function gatherParts(binding: ManifestBinding, inputs: Readonly<Record<string, HostData>>): HostData | undefined {
  if (binding.parts.length === 0 || !binding.parts.every((part) => inputs[part.name])) return undefined;
  const last = binding.parts[binding.parts.length - 1]!;
  const whole = new Float32Array(last.offset + inputs[last.name]!.length);
  for (const part of binding.parts) whole.set(inputs[part.name]!, part.offset);
  return whole;
}

export function webGpuBackend(handle: WebGpuHandle): KernelBackend {
  const { device } = handle;
  const compiled = new Map<string, Promise<CompiledKernel>>();
  return {
    name: 'webgpu',
    target: 'wgsl',
    async runKernel(program, kernel, run) {
      const key = `${program.precision}/${kernel.name}`;
      if (!compiled.has(key)) compiled.set(key, compile(device, program, kernel));
      const { manifest, pipelines } = await compiled.get(key)!;
      const elements = (b: ManifestBinding) => elementsFor(b, run.tokens);
      const buffers = manifest.bindings.map((b) => {
        if (b.access === 'uniform') return uploadUniform(device, uniformBytes(manifest, run));
        const input = run.inputs[b.name] ?? gatherParts(b, run.inputs);
        if (input) {
          if (input.length !== elements(b)) throw new Error(`${kernel.name}: ${b.name} has ${input.length} values, its shape ${formatShape(b.shape)} holds ${elements(b)}`);
          return uploadStorage(device, toDeviceWords(b, input));
        }
        if (b.access === 'read') throw new Error(`${kernel.name}: no input for ${b.name}`);
        return createStorage(device, elements(b));
      });
      const entryPoints = run.entryPoints ?? manifest.launches.map((l) => l.entryPoint);
      for (const name of entryPoints) {
        const launch = manifest.launches.find((l) => l.entryPoint === name);
        if (!launch) throw new Error(`${kernel.name} has no entry point ${name}`);
        const [x, y, z] = dispatchFor(launch, run.tokens);
        if (x! * y! * z! > 0) await dispatch(device, pipelines.get(name)!, buffers, [x!, y!, z!]);
      }
      const outputs: Record<string, HostData> = {};
      for (const b of manifest.bindings) {
        if (b.access !== 'read_write') continue;
        const count = elements(b);
        const words = await readFloat32(device, buffers[b.binding]!, b.elementType === 'f16' ? Math.ceil(count / 2) : count);
        if (b.elementType === 'u32') outputs[b.name] = new Uint32Array(words.buffer, words.byteOffset, count);
        else if (b.elementType === 'f16') outputs[b.name] = Float32Array.from(new Uint16Array(words.buffer, words.byteOffset, count), f16BitsToF32);
        else outputs[b.name] = words;
        for (const part of b.parts) {
          const size = part.shape.reduce((n, dim) => n * evaluateSize(dim, run.tokens), 1);
          outputs[part.name] = outputs[b.name]!.slice(part.offset, part.offset + size);
        }
      }
      for (const buffer of buffers) buffer.destroy();
      return outputs;
    },
  };
}
