// Runs the training ops' WGSL kernels (src/runtime/webgpu/ops/*.wgsl) on one device. Each op is
// a Job: it binds its arrays, encodes its dispatches in one compute pass and submits, without
// waiting for the device. What stays on the device:
// - an array an op wrote (an output, or a gradient it accumulated into) lives on the device
//   from then on — later ops read it there — until syncToHost copies it back and hands it to
//   the host again. The host must not touch such an array in between (QaLoraModel touches its
//   arrays only through the ops, and syncs the logits and the gradients it hands out);
// - every other array is the host's, uploaded each time an op reads it (inputs, A and B);
// - frozen weights (codes, scales, zeros, norms, the classifier, RoPE tables) are uploaded once
//   per host array (WeakMap-keyed: they must not change after their first use);
// - pipelines, one per kernel file, compiled on first use.
// Queue order makes the buffer pool simple: a buffer goes back to the pool right after the
// submit that reads it, since a later writeBuffer into it runs after that submit. Validation
// errors are collected and thrown at the next syncToHost.
//
// Binding convention of every kernel: outputs first, then inputs, the uniform params last;
// every kernel is 64 invocations wide and finds its element as `id.x + id.y · groups.x · 64`,
// so a dispatch can exceed 65535 workgroups in x.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../project-root.ts';

const OPS_DIR = join(PROJECT_ROOT, 'src', 'runtime', 'webgpu', 'ops');
const WORKGROUP = 64;
const MAX_GROUPS_X = 65535;

/** A uniform field: a plain number is a u32, `{ f32 }` a float. */
export type Param = number | { readonly f32: number };

type Frozen = Float32Array | Float64Array | Uint8Array;

/** A frozen weight rearranged for a kernel; `name` tells the layouts of one weight apart. */
export interface FrozenLayout {
  readonly name: string;
  build(host: Frozen): Float32Array | Uint32Array;
}

interface Dispatch {
  readonly kernel: string;
  readonly buffers: readonly GPUBuffer[];
  readonly params: readonly Param[];
  readonly invocations: number;
}

export class OpRunner {
  readonly device: GPUDevice;
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private readonly frozenBuffers = new WeakMap<Frozen, Map<string, GPUBuffer>>();
  /** Arrays whose newest values are on the device, and where. */
  private readonly resident = new WeakMap<Float32Array, GPUBuffer>();
  private pendingErrors: Promise<GPUError | null>[] = [];
  private readonly storagePool = new Map<number, GPUBuffer[]>();
  private readonly stagingPool = new Map<number, GPUBuffer[]>();
  private readonly uniformPool = new Map<number, GPUBuffer[]>();

  constructor(device: GPUDevice) {
    this.device = device;
  }

  job(): Job {
    return new Job(this);
  }

  /** The device buffer holding `host`'s newest values, if an op wrote it since the last sync. */
  residentBuffer(host: Float32Array): GPUBuffer | undefined {
    return this.resident.get(host);
  }

  /** From now on `buffer` holds `host`'s newest values. */
  adopt(host: Float32Array, buffer: GPUBuffer): void {
    this.resident.set(host, buffer);
  }

  /** @internal */ submitted(error: Promise<GPUError | null>): void {
    this.pendingErrors.push(error);
  }

  /** Copies every array the ops left on the device back into its host array and hands it to the host. */
  async syncToHost(hosts: readonly Float32Array[]): Promise<void> {
    const onDevice = [...new Set(hosts)].flatMap((host) => {
      const buffer = this.resident.get(host);
      return buffer === undefined ? [] : [{ host, buffer }];
    });
    const encoder = this.device.createCommandEncoder();
    const staging = onDevice.map(({ host, buffer }) => {
      const stage = this.take('staging', buffer.size);
      encoder.copyBufferToBuffer(buffer, 0, stage, 0, paddedSize(host.byteLength));
      return stage;
    });
    this.device.queue.submit([encoder.finish()]);
    for (const { host, buffer } of onDevice) {
      this.resident.delete(host);
      this.give('storage', buffer);
    }
    const errors = this.pendingErrors;
    this.pendingErrors = [];
    try {
      await Promise.all(staging.map((stage) => stage.mapAsync(GPUMapMode.READ)));
      const failure = (await Promise.all(errors)).find((error) => error !== null);
      if (failure) throw new Error(`WebGPU: ${failure.message}`);
      onDevice.forEach(({ host }, i) => {
        host.set(new Float32Array(staging[i]!.getMappedRange(0, paddedSize(host.byteLength)), 0, host.length));
      });
    } finally {
      for (const stage of staging) {
        if (stage.mapState === 'mapped') stage.unmap();
        this.give('staging', stage);
      }
    }
  }

  /** Zeroes `host` where its newest values are: on the device (a clear), or on the host. */
  zero(host: Float32Array): void {
    const buffer = this.resident.get(host);
    if (buffer === undefined) {
      host.fill(0);
      return;
    }
    const encoder = this.device.createCommandEncoder();
    encoder.clearBuffer(buffer);
    this.device.queue.submit([encoder.finish()]);
  }

  /**
   * The device copy of a weight that never changes: as stored (u8 codes four to a u32, float64
   * as f32), or in a `layout` that a kernel wants, built once from it.
   */
  frozen(host: Frozen, layout?: FrozenLayout): GPUBuffer {
    let copies = this.frozenBuffers.get(host);
    if (copies === undefined) {
      copies = new Map();
      this.frozenBuffers.set(host, copies);
    }
    const name = layout?.name ?? 'as stored';
    let buffer = copies.get(name);
    if (buffer === undefined) {
      const words = layout !== undefined ? layout.build(host) : host instanceof Uint8Array ? packBytes(host) : host instanceof Float64Array ? Float32Array.from(host) : host;
      buffer = this.device.createBuffer({ size: paddedSize(words.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      this.device.queue.writeBuffer(buffer, 0, words.buffer, words.byteOffset, words.byteLength);
      copies.set(name, buffer);
    }
    return buffer;
  }

  pipeline(kernel: string): Promise<GPUComputePipeline> {
    let pipeline = this.pipelines.get(kernel);
    if (pipeline === undefined) {
      pipeline = compile(this.device, kernel);
      this.pipelines.set(kernel, pipeline);
    }
    return pipeline;
  }

  /** @internal */ take(pool: 'storage' | 'staging' | 'uniform', size: number): GPUBuffer {
    const free = this.poolOf(pool).get(size);
    const reused = free?.pop();
    if (reused !== undefined) return reused;
    const usage = pool === 'storage' ? GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST
      : pool === 'staging' ? GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST
        : GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST;
    return this.device.createBuffer({ size, usage });
  }

  /** @internal */ give(pool: 'storage' | 'staging' | 'uniform', buffer: GPUBuffer): void {
    const map = this.poolOf(pool);
    const free = map.get(buffer.size) ?? [];
    free.push(buffer);
    map.set(buffer.size, free);
  }

  private poolOf(pool: 'storage' | 'staging' | 'uniform'): Map<number, GPUBuffer[]> {
    return pool === 'storage' ? this.storagePool : pool === 'staging' ? this.stagingPool : this.uniformPool;
  }
}

/** One op's bindings and dispatches; its scratch buffers return to the pool once it is submitted. */
export class Job {
  private readonly runner: OpRunner;
  private readonly dispatches: Dispatch[] = [];
  private readonly taken: { pool: 'storage' | 'uniform'; buffer: GPUBuffer }[] = [];

  constructor(runner: OpRunner) {
    this.runner = runner;
  }

  /** `host` for the kernel to read: where an op left it, or uploaded. */
  input(host: Float32Array | Int32Array | Uint32Array): GPUBuffer {
    const resident = host instanceof Float32Array ? this.runner.residentBuffer(host) : undefined;
    if (resident !== undefined) return resident;
    const buffer = this.scratch(host.length);
    this.upload(buffer, host);
    return buffer;
  }

  /** `host` for the kernel to overwrite; its values live on the device afterwards. */
  output(host: Float32Array): GPUBuffer {
    let buffer = this.runner.residentBuffer(host);
    if (buffer === undefined) {
      buffer = this.runner.take('storage', paddedSize(host.byteLength));
      this.runner.adopt(host, buffer);
    }
    return buffer;
  }

  /** `host` for the kernel to update (+=, or in place); its values live on the device afterwards. */
  inout(host: Float32Array): GPUBuffer {
    let buffer = this.runner.residentBuffer(host);
    if (buffer === undefined) {
      buffer = this.runner.take('storage', paddedSize(host.byteLength));
      this.upload(buffer, host);
      this.runner.adopt(host, buffer);
    }
    return buffer;
  }

  /** Device-only scratch of `length` 4-byte elements, contents undefined. */
  scratch(length: number): GPUBuffer {
    const buffer = this.runner.take('storage', paddedSize(length * 4));
    this.taken.push({ pool: 'storage', buffer });
    return buffer;
  }

  frozen(host: Frozen, layout?: FrozenLayout): GPUBuffer {
    return this.runner.frozen(host, layout);
  }

  /** `invocations` threads of `kernel` over `buffers` (outputs, inputs) and then its params. */
  dispatch(kernel: string, buffers: readonly GPUBuffer[], params: readonly Param[], invocations: number): this {
    this.dispatches.push({ kernel, buffers, params, invocations });
    return this;
  }

  /** Submits the dispatches in order; resolves once submitted (the results stay on the device). */
  async run(): Promise<void> {
    const { runner } = this;
    const { device } = runner;
    const pipelines = await Promise.all(this.dispatches.map((d) => runner.pipeline(d.kernel)));
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    this.dispatches.forEach((d, i) => {
      if (d.invocations === 0) return;
      const uniform = this.uniform(d.params);
      const pipeline = pipelines[i]!;
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [...d.buffers, uniform].map((buffer, binding) => ({ binding, resource: { buffer } })),
      }));
      const groups = Math.ceil(d.invocations / WORKGROUP);
      pass.dispatchWorkgroups(Math.min(groups, MAX_GROUPS_X), Math.ceil(groups / MAX_GROUPS_X));
    });
    pass.end();
    device.queue.submit([encoder.finish()]);
    runner.submitted(device.popErrorScope());
    for (const { pool, buffer } of this.taken) runner.give(pool, buffer);
  }

  private upload(buffer: GPUBuffer, host: Float32Array | Int32Array | Uint32Array): void {
    if (host.byteLength > 0) this.runner.device.queue.writeBuffer(buffer, 0, host.buffer, host.byteOffset, host.byteLength);
  }

  private uniform(params: readonly Param[]): GPUBuffer {
    const words = new DataView(new ArrayBuffer(Math.max(16, Math.ceil((params.length * 4) / 16) * 16)));
    params.forEach((p, i) => {
      if (typeof p === 'number') words.setUint32(i * 4, p, true);
      else words.setFloat32(i * 4, p.f32, true);
    });
    const buffer = this.runner.take('uniform', words.byteLength);
    this.runner.device.queue.writeBuffer(buffer, 0, words.buffer);
    this.taken.push({ pool: 'uniform', buffer });
    return buffer;
  }
}

async function compile(device: GPUDevice, kernel: string): Promise<GPUComputePipeline> {
  const file = `${kernel}.wgsl`;
  const module = device.createShaderModule({ label: file, code: readFileSync(join(OPS_DIR, file), 'utf8') });
  const { messages } = await module.getCompilationInfo();
  const errors = messages.filter((m) => m.type === 'error');
  if (errors.length > 0) throw new Error(errors.map((e) => `${file}:${e.lineNum}:${e.linePos}: error: ${e.message}`).join('\n'));
  return device.createComputePipelineAsync({ label: kernel, layout: 'auto', compute: { module, entryPoint: 'main' } });
}

/** Bytes four to a little-endian u32: byte i is bits 8·(i mod 4) … of word ⌊i/4⌋. */
function packBytes(bytes: Uint8Array): Uint32Array {
  const words = new Uint32Array(Math.ceil(bytes.length / 4));
  new Uint8Array(words.buffer).set(bytes);
  return words;
}

/** Buffers are at least 16 bytes and a multiple of 16 (storage bindings need 4; pooling likes fewer sizes). */
function paddedSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}
