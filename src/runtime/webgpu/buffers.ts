// The plumbing kernel tests share: host arrays into buffers, WGSL into a checked pipeline,
// one dispatch, and results back to the host. Binding i of group 0 is buffers[i].

export type HostArray = Float32Array | Uint32Array | Int32Array;

const storageUsage = (): number =>
  GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A storage buffer holding `data` (also readable back and writable by copies). */
export function uploadStorage(device: GPUDevice, data: HostArray): GPUBuffer {
  return uploadBytes(device, data, storageUsage(), 4);
}

/** A uniform buffer holding `data`, padded to WGSL's 16-byte uniform struct alignment. */
export function uploadUniform(device: GPUDevice, data: HostArray): GPUBuffer {
  return uploadBytes(device, data, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 16);
}

/** A zeroed storage buffer of `elementCount` 4-byte elements, for a kernel to write. */
export function createStorage(device: GPUDevice, elementCount: number): GPUBuffer {
  const size = Math.max(roundUp(elementCount * 4, 4), 4);
  return device.createBuffer({ size, usage: storageUsage() });
}

/** Compiles WGSL and builds a compute pipeline; WGSL errors are thrown with line and column. */
export async function createComputePipeline(
  device: GPUDevice,
  wgsl: string,
  entryPoint = 'main',
): Promise<GPUComputePipeline> {
  const module = device.createShaderModule({ code: wgsl });
  const { messages } = await module.getCompilationInfo();
  const errors = messages.filter((message) => message.type === 'error');
  if (errors.length > 0) {
    const lines = errors.map(
      (error) => `wgsl:${error.lineNum}:${error.linePos}: error: ${error.message}`,
    );
    throw new Error(lines.join('\n'));
  }
  return device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint } });
}

/** Binds `buffers` to group 0 in order, dispatches once and waits for the GPU to finish. */
export async function dispatch(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  buffers: readonly GPUBuffer[],
  workgroups: readonly [x: number, y?: number, z?: number],
): Promise<void> {
  device.pushErrorScope('validation');
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(workgroups[0], workgroups[1] ?? 1, workgroups[2] ?? 1);
  pass.end();
  device.queue.submit([encoder.finish()]);
  const error = await device.popErrorScope();
  if (error) throw new Error(`WebGPU dispatch: ${error.message}`);
  await device.queue.onSubmittedWorkDone();
}

/** Copies the first `length` f32 values of `buffer` back to the host. */
export async function readFloat32(
  device: GPUDevice,
  buffer: GPUBuffer,
  length: number,
): Promise<Float32Array> {
  const byteLength = roundUp(length * 4, 4);
  const staging = device.createBuffer({
    size: byteLength,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, staging, 0, byteLength);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const result = new Float32Array(staging.getMappedRange().slice(0, length * 4));
  staging.unmap();
  staging.destroy();
  return result;
}

function uploadBytes(device: GPUDevice, data: HostArray, usage: number, align: number): GPUBuffer {
  // Zero-sized buffers cannot be bound, so an empty array still gets one aligned block.
  const size = Math.max(roundUp(data.byteLength, align), align);
  const buffer = device.createBuffer({ size, usage, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  );
  buffer.unmap();
  return buffer;
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}
