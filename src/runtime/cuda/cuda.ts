// The CUDA driver, typed: build/Release/qalc_cuda.node (native/cuda-driver.cc) dlopens
// libcuda.so.1 when first asked, so everything here loads on a machine without a GPU, and
// cudaAvailability() says why there is none ("no GPU: libcuda.so.1 not found …").
//
//   const cuda = cudaDriver();                       // throws CudaUnavailableError with the reason
//   const kernels = cuda.loadModule(fatbinBytes);    // cuModuleLoadData
//   const fn = kernels.function('forward_k64_…__forward');
//   const x = cuda.alloc(bytes); x.upload(array);
//   cuda.launch(fn, grid, block, 0, [pointer(x), u32(tokens), f32(scale)]);
//   cuda.synchronize(); y.download(array);
//
// One device (ordinal 0) and its primary context; launches, copies and GEMMs go to one stream, in
// order (a created one, which a CUDA graph can be captured from: DeviceGraphs).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../project-root.ts';

export const CUDA_ADDON_PATH = join(PROJECT_ROOT, 'build', 'Release', 'qalc_cuda.node');

export interface CudaDevice {
  readonly name: string;
  readonly computeCapability: readonly [number, number];
  readonly multiprocessors: number;
  readonly totalMemory: number;
  /** cuDriverGetVersion: 13000 for CUDA 13.0. */
  readonly driverVersion: number;
}

export type CudaAvailability =
  | { readonly available: true; readonly device: CudaDevice }
  | { readonly available: false; readonly reason: string };

/** No usable GPU (no driver, no device, no addon); the message says which. */
export class CudaUnavailableError extends Error {
  override readonly name = 'CudaUnavailableError';
}

/** What native/cuda-driver.cc exports. */
interface CudaAddon {
  probe(): { available: true } & CudaDevice | { available: false; reason: string };
  loadModule(image: Uint8Array): number;
  getFunction(module: number, symbol: string): number;
  alloc(bytes: number): bigint;
  free(pointer: bigint): void;
  copyToDevice(pointer: bigint, source: ArrayBufferView): void;
  copyFromDevice(destination: ArrayBufferView, pointer: bigint): void;
  copyOnDevice(destination: bigint, source: bigint, bytes: number): void;
  memset(pointer: bigint, byte: number, bytes: number): void;
  launch(fn: number, gridX: number, gridY: number, gridZ: number, blockX: number, blockY: number, blockZ: number, sharedBytes: number, parameters: Uint8Array, offsets: Uint32Array): void;
  synchronize(): void;
  blasProbe(): { available: true; library: string; version: [number, number, number] } | { available: false; reason: string };
  /** Row-major, as GemmCall, with pointers (offsets added) and row strides; see native/cuda-driver.cc. */
  gemm(
    transposeA: boolean, transposeB: boolean, m: number, n: number, k: number, alpha: number, a: bigint, lda: number, b: bigint, ldb: number,
    beta: number, out: bigint, ldo: number, abType: DeviceMatrix['type'], outType: DeviceMatrix['type'],
  ): void;
  eventRecord(): number;
  eventElapsed(start: number, end: number): number;
  eventsReset(): void;
  graphProbe(): { available: true } | { available: false; reason: string };
  beginCapture(): void;
  endCapture(): { graph: number; nodes: number };
  abortCapture(): void;
  graphLaunch(graph: number): void;
  graphDestroy(graph: number): void;
}

let addon: CudaAddon | undefined;
let addonError: string | undefined;

function loadAddon(): CudaAddon | string {
  if (addon !== undefined) return addon;
  if (addonError !== undefined) return addonError;
  if (!existsSync(CUDA_ADDON_PATH)) {
    addonError = `the CUDA driver binding is not built: ${CUDA_ADDON_PATH} is missing (run \`npm ci\` or \`npx node-gyp rebuild\`)`;
    return addonError;
  }
  try {
    addon = createRequire(import.meta.url)(CUDA_ADDON_PATH) as CudaAddon;
    return addon;
  } catch (error) {
    addonError = `cannot load ${CUDA_ADDON_PATH}: ${(error as Error).message} (rebuild it with \`npx node-gyp rebuild\`)`;
    return addonError;
  }
}

/** Whether a GPU can be used, and which; never throws. */
export function cudaAvailability(): CudaAvailability {
  const loaded = loadAddon();
  if (typeof loaded === 'string') return { available: false, reason: loaded };
  const probe = loaded.probe();
  if (!probe.available) return { available: false, reason: probe.reason };
  const { name, computeCapability, multiprocessors, totalMemory, driverVersion } = probe;
  return { available: true, device: { name, computeCapability: [computeCapability[0], computeCapability[1]], multiprocessors, totalMemory, driverVersion } };
}

export type CublasAvailability =
  | { readonly available: true; readonly library: string; readonly version: string }
  | { readonly available: false; readonly reason: string };

/** Whether cuBLAS loads (libcublas.so.13, dlopened by the addon; no GPU needed to ask), and which; never throws. */
export function cublasAvailability(): CublasAvailability {
  const loaded = loadAddon();
  if (typeof loaded === 'string') return { available: false, reason: loaded };
  const probe = loaded.blasProbe();
  return probe.available ? { available: true, library: probe.library, version: probe.version.join('.') } : { available: false, reason: probe.reason };
}

/** A kernel function of a loaded module. */
export interface CudaFunction {
  readonly symbol: string;
  readonly handle: number;
}

export interface CudaModule {
  /** cuModuleGetFunction; throws when the module has no such extern "C" symbol. */
  function(symbol: string): CudaFunction;
}

/** A device buffer; upload and download are synchronous for the host (its array may be reused or read when they return), fill and copyFrom in stream order. */
export interface DeviceBuffer {
  readonly pointer: bigint;
  readonly bytes: number;
  upload(source: ArrayBufferView): void;
  download(destination: ArrayBufferView): void;
  fill(byte: number, bytes?: number): void;
  /** this[offset … offset + bytes) = source[0 … bytes), on the device, in stream order. */
  copyFrom(source: DeviceBuffer, bytes: number, offset?: number): void;
  /** Bytes [offset, offset + bytes) of this buffer as a buffer of their own (its pointer is this one's + offset); freeing it frees nothing. */
  view(offset: number, bytes: number): DeviceBuffer;
  free(): void;
}

/** A row-major matrix in device memory: element (i, j) at byte offset + (i · ld + j) · its size. */
export interface DeviceMatrix {
  readonly buffer: DeviceBuffer;
  readonly type: 'bf16' | 'f16' | 'f32';
  readonly rows: number;
  readonly columns: number;
  /** Elements from one row to the next (≥ columns); columns when absent. */
  readonly ld?: number;
  /** Bytes into the buffer; 0 when absent. */
  readonly offset?: number;
}

/**
 * out = alpha · op(a) · op(b) + beta · out, all row-major, accumulated in float32; op(x) is x or,
 * with transposeA / transposeB, xᵀ. a and b have one type (bf16, f16 or f32); out any of them.
 * Shapes: op(a) out.rows × k, op(b) k × out.columns.
 */
export interface GemmCall {
  readonly a: DeviceMatrix;
  readonly b: DeviceMatrix;
  readonly out: DeviceMatrix;
  readonly transposeA?: boolean;
  readonly transposeB?: boolean;
  readonly alpha?: number;
  readonly beta?: number;
}

/** What the cuda ops need of a driver (a test can supply a simulated one). */
export interface CudaDevicePort {
  loadModule(image: Uint8Array): CudaModule;
  alloc(bytes: number): DeviceBuffer;
  /** Reads `grid`, `block` and `parameters` before it returns: callers reuse them for their next launch. */
  launch(fn: CudaFunction, grid: Dim3, block: Dim3, sharedBytes: number, parameters: readonly KernelParameter[]): void;
  synchronize(): void;
  /**
   * A dense GEMM by the GPU's BLAS library (cuBLAS, dlopened like libcuda), in stream order with
   * the launches; absent where there is none (the ops then use their own kernels).
   */
  readonly gemm?: (call: GemmCall) => void;
  /** GPU-side timestamps in stream order (CUDA events), for the profile; absent in a simulation. */
  readonly events?: DeviceEvents;
  /** CUDA graphs captured from the stream; absent where the driver has none (the caller runs uncaptured). */
  readonly graphs?: DeviceGraphs;
}

/**
 * Capture and replay (CUDA graphs): between begin() and end() the port records its launches,
 * device→device copies, fills and GEMMs instead of running them — with their parameters as
 * they are at that moment, pointers and scalars alike — and refuses what a graph cannot hold:
 * host↔device copies, allocations, frees, waits. A replay runs the recorded work again on the
 * same buffers, in order with everything else; so whatever must differ between replays has to be
 * read by the kernels from device memory, written before the launch (an upload outside capture).
 * What was recorded has not run: launch the graph once to run it.
 */
export interface DeviceGraphs {
  begin(): void;
  /** Stops recording; the recorded work, instantiated. */
  end(): DeviceGraph;
  /** Stops a recording that failed half-way and drops it (nothing when none is under way). */
  abort(): void;
}

export interface DeviceGraph {
  /** Device calls recorded (the graph's nodes). */
  readonly nodes: number;
  /** Queues one replay. */
  launch(): void;
  destroy(): void;
}

/** CUDA events: what event-profiled-port.ts times the device's calls with, without waiting for each. */
export interface DeviceEvents {
  /** Records an event after everything queued so far; its handle. */
  record(): number;
  /** Milliseconds on the GPU between two recorded events; waits for the later one. */
  elapsed(start: number, end: number): number;
  /** Every handle recorded so far may be recorded again (read their times first). */
  reset(): void;
}

/** The k of a GemmCall, checked against every operand's shape; throws naming the mismatch. */
export function gemmShape(call: GemmCall): { m: number; n: number; k: number } {
  const { a, b, out } = call;
  const [aRows, aColumns] = call.transposeA ? [a.columns, a.rows] : [a.rows, a.columns];
  const [bRows, bColumns] = call.transposeB ? [b.columns, b.rows] : [b.rows, b.columns];
  if (aRows !== out.rows || bColumns !== out.columns || aColumns !== bRows) {
    throw new RangeError(`gemm: op(a) is ${aRows}×${aColumns}, op(b) ${bRows}×${bColumns}, out ${out.rows}×${out.columns}`);
  }
  if (a.type !== b.type) throw new TypeError(`gemm: a is ${a.type}, b ${b.type}`);
  for (const [name, x] of [['a', a], ['b', b], ['out', out]] as const) {
    const ld = x.ld ?? x.columns;
    const size = x.type === 'f32' ? 4 : 2;
    if (ld < x.columns) throw new RangeError(`gemm: ${name} has rows of ${x.columns} but ld ${ld}`);
    const end = (x.offset ?? 0) + ((x.rows - 1) * ld + x.columns) * size;
    if (x.rows > 0 && end > x.buffer.bytes) throw new RangeError(`gemm: ${name} (${x.rows}×${x.columns}, ld ${ld}, offset ${x.offset ?? 0}) ends at byte ${end} of a buffer of ${x.buffer.bytes}`);
  }
  return { m: out.rows, n: out.columns, k: aColumns };
}

/** A cuMemAlloc'd buffer, or a view of part of one (`owned` false: free() leaves the memory to its owner). */
class NativeDeviceBuffer implements DeviceBuffer {
  constructor(private readonly driver: CudaAddon, readonly pointer: bigint, readonly bytes: number, private readonly owned = true) {}

  upload(source: ArrayBufferView): void {
    if (source.byteLength > this.bytes) throw new RangeError(`uploading ${source.byteLength} bytes into a buffer of ${this.bytes}`);
    this.driver.copyToDevice(this.pointer, source);
  }

  download(destination: ArrayBufferView): void {
    if (destination.byteLength > this.bytes) throw new RangeError(`downloading ${destination.byteLength} bytes from a buffer of ${this.bytes}`);
    this.driver.copyFromDevice(destination, this.pointer);
  }

  fill(byte: number, bytes = this.bytes): void {
    this.driver.memset(this.pointer, byte, bytes);
  }
  copyFrom(source: DeviceBuffer, bytes: number, offset = 0): void {
    if (offset + bytes > this.bytes || bytes > source.bytes) throw new RangeError(`copying ${bytes} bytes to offset ${offset} of a buffer of ${this.bytes} from one of ${source.bytes}`);
    this.driver.copyOnDevice(this.pointer + BigInt(offset), source.pointer, bytes);
  }

  view(offset: number, bytes: number): DeviceBuffer {
    if (offset < 0 || offset + bytes > this.bytes) throw new RangeError(`a view of bytes ${offset}…${offset + bytes} of a buffer of ${this.bytes}`);
    return new NativeDeviceBuffer(this.driver, this.pointer + BigInt(offset), bytes, false);
  }

  free(): void {
    if (this.owned) this.driver.free(this.pointer);
  }
}

/** A kernel parameter, in the order the extern "C" signature declares them. */
export type KernelParameter =
  | { readonly kind: 'pointer'; readonly value: bigint }
  | { readonly kind: 'u32'; readonly value: number }
  | { readonly kind: 'f32'; readonly value: number };

export const pointer = (buffer: DeviceBuffer | bigint): KernelParameter => ({ kind: 'pointer', value: typeof buffer === 'bigint' ? buffer : buffer.pointer });
export const u32 = (value: number): KernelParameter => ({ kind: 'u32', value });
export const f32 = (value: number): KernelParameter => ({ kind: 'f32', value });

/**
 * A KernelParameter that a launcher keeps and sets again for each launch (its kind fixed): a
 * driver reads parameters before launch() returns, and a step's ~850 launches each made a dozen
 * such objects for the young generation otherwise.
 */
export type ReusedParameter = { readonly kind: 'pointer'; value: bigint } | { readonly kind: 'u32' | 'f32'; value: number };

export const reusedParameter = (kind: KernelParameter['kind']): ReusedParameter => (kind === 'pointer' ? { kind, value: 0n } : { kind, value: 0 });

/**
 * Packs a launch's parameters at their natural alignment, as cuLaunchKernel's kernelParams point
 * into, in memory it reuses: cuLaunchKernel copies the values before it returns
 * (native/cuda-driver.cc), so one packing area serves every launch and a launch allocates
 * nothing (the host side of a step is ~850 launches: their garbage was a good part of its time).
 */
export class ParameterPacker {
  /** The packed values of the last pack(); longer than they need (the addon reads what offsets say). */
  bytes = new Uint8Array(512);
  private view = new DataView(this.bytes.buffer);
  /** One offsets array per parameter count, overwritten by each pack() of that count. */
  private readonly offsetsByCount: Uint32Array[] = [];

  /** Packs `parameters` into `bytes`; returns where each starts (valid until the next pack()). */
  pack(parameters: readonly KernelParameter[]): Uint32Array {
    const count = parameters.length;
    const offsets = (this.offsetsByCount[count] ??= new Uint32Array(count));
    let end = 0;
    for (let i = 0; i < count; i++) {
      const size = parameters[i]!.kind === 'pointer' ? 8 : 4;
      end = Math.ceil(end / size) * size;
      offsets[i] = end;
      end += size;
    }
    if (end > this.bytes.length) {
      this.bytes = new Uint8Array(2 * end);
      this.view = new DataView(this.bytes.buffer);
    }
    const view = this.view;
    for (let i = 0; i < count; i++) {
      const p = parameters[i]!;
      const at = offsets[i]!;
      if (p.kind === 'pointer') view.setBigUint64(at, p.value, true);
      else if (p.kind === 'u32') view.setUint32(at, p.value, true);
      else view.setFloat32(at, p.value, true);
    }
    return offsets;
  }
}

export type Dim3 = readonly [number, number, number];

export class CudaDriver implements CudaDevicePort {
  /** cuBLAS's GemmEx when libcublas loads (probed once, here); absent otherwise. */
  readonly gemm?: (call: GemmCall) => void;
  /** Whether gemm is there, and why not: for the backend's notice. */
  readonly blas: CublasAvailability;

  readonly events: DeviceEvents;
  /** CUDA graphs where the driver has them (CUDA 11.4+); absent otherwise. */
  readonly graphs?: DeviceGraphs;
  /** Why graphs is absent, for the notice; undefined when it is there. */
  readonly graphsUnavailable?: string;
  private readonly packer = new ParameterPacker();

  constructor(private readonly driver: CudaAddon, readonly device: CudaDevice) {
    this.events = { record: () => driver.eventRecord(), elapsed: (start, end) => driver.eventElapsed(start, end), reset: () => driver.eventsReset() };
    const graphs = driver.graphProbe();
    if (graphs.available) {
      this.graphs = {
        begin: () => driver.beginCapture(),
        end: () => {
          const { graph, nodes } = driver.endCapture();
          return { nodes, launch: () => driver.graphLaunch(graph), destroy: () => driver.graphDestroy(graph) };
        },
        abort: () => driver.abortCapture(),
      };
    } else {
      this.graphsUnavailable = graphs.reason;
    }
    this.blas = cublasAvailability();
    if (this.blas.available) {
      this.gemm = (call) => {
        const { m, n, k } = gemmShape(call);
        const { a, b, out } = call;
        const at = (x: DeviceMatrix) => x.buffer.pointer + BigInt(x.offset ?? 0);
        const ld = (x: DeviceMatrix) => x.ld ?? x.columns;
        driver.gemm(call.transposeA ?? false, call.transposeB ?? false, m, n, k, call.alpha ?? 1, at(a), ld(a), at(b), ld(b), call.beta ?? 0, at(out), ld(out), a.type, out.type);
      };
    }
  }

  /** cuModuleLoadData on a fatbin (or cubin, or NUL-free PTX text as bytes). */
  loadModule(image: Uint8Array): CudaModule {
    const module = this.driver.loadModule(image);
    return { function: (symbol) => ({ symbol, handle: this.driver.getFunction(module, symbol) }) };
  }

  alloc(bytes: number): DeviceBuffer {
    return new NativeDeviceBuffer(this.driver, this.driver.alloc(Math.max(1, bytes)), Math.max(1, bytes));
  }

  /** Queues the kernel on the stream; errors inside it surface at synchronize(). */
  launch(fn: CudaFunction, grid: Dim3, block: Dim3, sharedBytes: number, parameters: readonly KernelParameter[]): void {
    const offsets = this.packer.pack(parameters);
    this.driver.launch(fn.handle, grid[0], grid[1], grid[2], block[0], block[1], block[2], sharedBytes, this.packer.bytes, offsets);
  }

  synchronize(): void {
    this.driver.synchronize();
  }
}

let driver: CudaDriver | undefined;

/** The driver on device 0, opened once; throws CudaUnavailableError saying why not. */
export function cudaDriver(): CudaDriver {
  if (driver !== undefined) return driver;
  const availability = cudaAvailability();
  if (!availability.available) throw new CudaUnavailableError(availability.reason);
  driver = new CudaDriver(addon!, availability.device);
  return driver;
}
