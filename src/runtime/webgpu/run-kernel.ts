// Runs one kernel through its generated typed descriptor (generated/<name>/kernels.mts): the
// descriptor says every binding, the uniform layout and each entry point's dispatch for T;
// this file only turns that into WebGPU calls. Inputs are the caller's typed arrays; every
// written buffer comes back.
import type { BufferBinding, HostArrayOf, WgslKernel } from '../../bindings/kernel-descriptor.ts';
import type { WebGpuHandle } from './device.ts';

type HostArray = Float32Array | Uint32Array | Int32Array | Uint16Array;

function elementCount(binding: BufferBinding, tokens: number): number {
  return binding.shape(tokens).reduce((a, b) => a * b, 1);
}

function byteLength(binding: BufferBinding, tokens: number): number {
  const bytes = elementCount(binding, tokens) * (binding.elementType === 'f16' || binding.elementType === 'bf16' ? 2 : 4);
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

export type KernelOutputs<Buffers> = { [K in keyof Buffers]: HostArray };

export async function runWgslKernel<Buffers, Uniforms>(
  gpu: WebGpuHandle,
  kernel: WgslKernel<Buffers, Uniforms>,
  wgsl: string,
  inputs: Partial<{ [K in keyof Buffers]: HostArray }>,
  uniforms: Uniforms,
  tokens: number,
): Promise<Partial<KernelOutputs<Buffers>>> {
  const { device } = gpu;
  if (kernel.requires.includes('f16') && !gpu.hasF16) throw new Error(`${kernel.name} needs shader-f16, which this adapter does not offer`);
  if (kernel.maxTokens !== undefined && tokens > kernel.maxTokens) throw new RangeError(`${kernel.name} takes at most ${kernel.maxTokens} tokens, not ${tokens}`);
  const module = device.createShaderModule({ code: wgsl });
  const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
  if (errors.length > 0) throw new Error(errors.map((e) => `${kernel.file}:${e.lineNum}:${e.linePos}: error: ${e.message}`).join('\n'));

  const names = Object.keys(kernel.buffers) as (keyof Buffers & string)[];
  const entries: GPUBindGroupLayoutEntry[] = names.map((name) => ({
    binding: kernel.buffers[name].binding,
    visibility: GPUShaderStage.COMPUTE,
    buffer: { type: kernel.buffers[name].access === 'read' ? 'read-only-storage' : 'storage' },
  }));
  const buffers = new Map<number, GPUBuffer>();
  for (const name of names) {
    const binding = kernel.buffers[name];
    const buffer = device.createBuffer({ size: byteLength(binding, tokens), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const data = inputs[name];
    if (data) {
      if (data.length !== elementCount(binding, tokens)) throw new RangeError(`${kernel.name}: ${name} has ${data.length} elements, its shape [${binding.shape(tokens).join(', ')}] needs ${elementCount(binding, tokens)}`);
      device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    } else if (binding.access === 'read') {
      throw new Error(`${kernel.name}: no data for input ${name}`);
    }
    buffers.set(binding.binding, buffer);
  }
  if (kernel.uniforms) {
    entries.push({ binding: kernel.uniforms.binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
    const words = new ArrayBuffer(kernel.uniforms.size);
    for (const [field, { offset, type }] of Object.entries(kernel.uniforms.fields) as [string, { offset: number; type: 'u32' | 'f32' }][]) {
      const value = (uniforms as Record<string, number>)[field];
      if (value === undefined) throw new Error(`${kernel.name}: no value for uniform ${field}`);
      if (type === 'u32') new Uint32Array(words, offset, 1)[0] = value;
      else new Float32Array(words, offset, 1)[0] = value;
    }
    const buffer = device.createBuffer({ size: kernel.uniforms.size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(buffer, 0, words);
    buffers.set(kernel.uniforms.binding, buffer);
  }
  const layout = device.createBindGroupLayout({ entries });
  const bindGroup = device.createBindGroup({ layout, entries: [...buffers].map(([binding, buffer]) => ({ binding, resource: { buffer } })) });
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });

  device.pushErrorScope('validation');
  const encoder = device.createCommandEncoder();
  for (const entry of kernel.entryPoints) {
    const pipeline = await device.createComputePipelineAsync({ layout: pipelineLayout, compute: { module, entryPoint: entry.name } });
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y, z] = entry.dispatch(tokens);
    pass.dispatchWorkgroups(x, y, z);
    pass.end();
  }
  const written = names.filter((name) => kernel.buffers[name].access === 'read_write');
  const staging = new Map<string, GPUBuffer>();
  for (const name of written) {
    const size = byteLength(kernel.buffers[name], tokens);
    const target = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    encoder.copyBufferToBuffer(buffers.get(kernel.buffers[name].binding)!, 0, target, 0, size);
    staging.set(name, target);
  }
  device.queue.submit([encoder.finish()]);
  const error = await device.popErrorScope();
  if (error) throw new Error(`${kernel.name}: ${error.message}`);

  const outputs: Partial<KernelOutputs<Buffers>> = {};
  for (const name of written) {
    const target = staging.get(name)!;
    await target.mapAsync(GPUMapMode.READ);
    const bytes = target.getMappedRange().slice(0);
    target.unmap();
    target.destroy();
    const binding = kernel.buffers[name];
    const count = elementCount(binding, tokens);
    const view: HostArrayOf<typeof binding.elementType> | HostArray = binding.elementType === 'f32' ? new Float32Array(bytes, 0, count)
      : binding.elementType === 'u32' ? new Uint32Array(bytes, 0, count)
      : binding.elementType === 'i32' ? new Int32Array(bytes, 0, count)
      : new Uint16Array(bytes, 0, count);
    outputs[name] = view;
  }
  for (const buffer of buffers.values()) buffer.destroy();
  return outputs;
}
