// Runs the training ops' WGSL kernels (src/runtime/webgpu/ops/*.wgsl) and the spec's compiled
// kernels (compiled-kernels.ts) on one device. Each op is
// a Job: it binds its arrays, encodes its dispatches in one compute pass and submits, without
// waiting for the device. What stays on the device:
// - an array an op wrote (an output, or a gradient it accumulated into) lives on the device
//   from then on — later ops read it there — until syncToHost copies it back and hands it to
//   the host again. The host must not touch such an array in between (QaLoraModel touches its
//   arrays only through the ops, and syncs the logits and the gradients it hands out);
// - every other array is the host's, uploaded each time an op reads it (inputs, A and B);
// - frozen weights (codes, scales, zeros, norms, the classifier, RoPE tables) are uploaded once
//   per host array (WeakMap-keyed: they must not change after their first use);
// - pipelines, one per op kernel file and one per compiled entry point, compiled on first use.
// Queue order makes the buffer pool simple: a buffer goes back to the pool right after the
// submit that reads it, since a later writeBuffer into it runs after that submit. Validation
// errors are collected and thrown at the next syncToHost.
//
// Binding convention of every op kernel: outputs first, then inputs, the uniform params last;
// every op kernel is 64 invocations wide and finds its element as `id.x + id.y · groups.x · 64`,
// so a dispatch can exceed 65535 workgroups in x. A compiled kernel binds and dispatches as its
// manifest entry says.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispatchFor, launchesFor } from '../../backends/manifest.ts';
import { PROJECT_ROOT } from '../../project-root.ts';
import type { CompiledWgslKernel } from './compiled-kernels.ts';

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

/** A dispatch of an op kernel of ./ops/ (the binding convention above). */
interface OpDispatch {
  readonly kind: 'op';
  readonly kernel: string;
  readonly buffers: readonly GPUBuffer[];
  readonly params: readonly Param[];
  readonly invocations: number;
}

/** A dispatch of one entry point of a compiled kernel: bindings and workgroups as its manifest says. */
interface CompiledDispatch {
  readonly kind: 'compiled';
  readonly kernel: CompiledWgslKernel;
  readonly entryPoint: string;
  /** Every buffer binding of the kernel by number; the uniform binding is filled from `params`. */
  readonly buffers: ReadonlyMap<number, GPUBuffer>;
  /** The uniform fields in offset order. */
  readonly params: readonly Param[];
  readonly workgroups: readonly [number, number, number];
}

type Dispatch = OpDispatch | CompiledDispatch;

/** A compiled pipeline with the explicit layout of its kernel's manifest (every binding, whichever the entry point uses). */
interface CompiledPipeline {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

export class OpRunner {
  readonly device: GPUDevice;
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private readonly compiledPipelines = new Map<string, Promise<CompiledPipeline>>();
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

  /** @internal */ compiledPipeline(kernel: CompiledWgslKernel, entryPoint: string): Promise<CompiledPipeline> {
    const key = `${kernel.manifest.kernel} ${entryPoint}`;
    let pipeline = this.compiledPipelines.get(key);
    if (pipeline === undefined) {
      pipeline = compileKernel(this.device, kernel, entryPoint);
      this.compiledPipelines.set(key, pipeline);
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
    this.dispatches.push({ kind: 'op', kernel, buffers, params, invocations });
    return this;
  }

  /**
   * Every entry point of a compiled kernel, in manifest order, for `tokens` rows: `buffers` by
   * binding name, `uniforms` by field name (the manifest's uniform struct).
   */
  dispatchCompiled(kernel: CompiledWgslKernel, tokens: number, buffers: Readonly<Record<string, GPUBuffer>>, uniforms: Readonly<Record<string, number>>): this {
    const { manifest } = kernel;
    const byBinding = new Map<number, GPUBuffer>();
    for (const binding of manifest.bindings) {
      if (binding.access === 'uniform') continue;
      const buffer = buffers[binding.name];
      if (buffer === undefined) throw new Error(`kernel ${manifest.kernel}: no buffer for binding ${binding.name}`);
      byBinding.set(binding.binding, buffer);
    }
    const params = [...manifest.uniforms.fields].sort((a, b) => a.offset - b.offset).map((field, i): Param => {
      if (field.offset !== 4 * i) throw new Error(`kernel ${manifest.kernel}: uniform ${field.name} at offset ${field.offset}, expected ${4 * i}`);
      const value = uniforms[field.name];
      if (value === undefined) throw new Error(`kernel ${manifest.kernel}: no value for uniform ${field.name}`);
      return field.type === 'u32' ? value : { f32: value };
    });
    const launches = launchesFor(manifest, tokens);
    if (launches === undefined) throw new RangeError(`kernel ${manifest.kernel} has no launch for T = ${tokens}`);
    for (const launch of launches) {
      this.dispatches.push({ kind: 'compiled', kernel, entryPoint: launch.symbol, buffers: byBinding, params, workgroups: dispatchFor(launch, tokens) });
    }
    return this;
  }

  /** Submits the dispatches in order; resolves once submitted (the results stay on the device). */
  async run(): Promise<void> {
    const { runner } = this;
    const { device } = runner;
    const pipelines = await Promise.all(this.dispatches.map((d) => (d.kind === 'op' ? runner.pipeline(d.kernel) : runner.compiledPipeline(d.kernel, d.entryPoint))));
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    this.dispatches.forEach((d, i) => {
      if (d.kind === 'op') {
        if (d.invocations === 0) return;
        const uniform = this.uniform(d.params);
        const pipeline = pipelines[i] as GPUComputePipeline;
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [...d.buffers, uniform].map((buffer, binding) => ({ binding, resource: { buffer } })),
        }));
        const groups = Math.ceil(d.invocations / WORKGROUP);
        pass.dispatchWorkgroups(Math.min(groups, MAX_GROUPS_X), Math.ceil(groups / MAX_GROUPS_X));
        return;
      }
      if (d.workgroups.some((count) => count === 0)) return;
      const { pipeline, layout } = pipelines[i] as CompiledPipeline;
      const entries = [...d.buffers].map(([binding, buffer]) => ({ binding, resource: { buffer } }));
      const uniformBinding = d.kernel.manifest.uniforms.binding;
      if (uniformBinding !== null) entries.push({ binding: uniformBinding, resource: { buffer: this.uniform(d.params) } });
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, device.createBindGroup({ layout, entries }));
      pass.dispatchWorkgroups(...d.workgroups);
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

async function compileKernel(device: GPUDevice, kernel: CompiledWgslKernel, entryPoint: string): Promise<CompiledPipeline> {
  const { manifest, source } = kernel;
  const module = device.createShaderModule({ label: manifest.file, code: source });
  const { messages } = await module.getCompilationInfo();
  const errors = messages.filter((m) => m.type === 'error');
  if (errors.length > 0) throw new Error(errors.map((e) => `${manifest.file}:${e.lineNum}:${e.linePos}: error: ${e.message}`).join('\n'));
  const layout = device.createBindGroupLayout({
    label: manifest.kernel,
    entries: manifest.bindings.map((b) => ({
      binding: b.binding,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: b.access === 'uniform' ? 'uniform' : b.access === 'read' ? 'read-only-storage' : 'storage' },
    })),
  });
  const pipeline = await device.createComputePipelineAsync({
    label: `${manifest.kernel} ${entryPoint}`,
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint },
  });
  return { pipeline, layout };
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
