// A stand-in for the GPU in CI: a CudaDevicePort whose memory is host bytes and whose kernels
// are the manifest's roles computed in float64 straight from the buffers the runtime bound —
// GPTQ qweight decoded as the emitted weightCode() reads it, bf16/fp16/f32 bindings, the part
// offsets of groupScalesAndZeros / adapterWeights, dropout multipliers, layers without adapter;
// forward, decode, backward_data, adapter_grad, dequantize (Ŵ into its binding) and the
// forward's u/v prologue launched alone (the dequantize + cuBLAS path); quantize and pack
// (simulated-quantize.ts: the kernels' own arithmetic transcribed). It checks the host side of the cuda ops (packing, layouts, launch parameters, which kernel
// for which layer), not the kernels themselves (those were checked on the H200 against float64:
// test/backends/cuda/h200).
//
// Its CUDA graphs (DeviceGraphs) are a recording: during a capture every launch, device copy,
// fill and GEMM is recorded with its parameters' values of that moment (as cuLaunchKernel copies
// them) and not run, and what a real capture cannot hold — host↔device copies, allocations,
// waits — throws; a replay runs the recording again. So a decode step that still passed
// something that changes per token as a kernel parameter, or uploaded it inside the step, gives
// wrong numbers or an error here, as it would on the GPU.
import { gemmShape, type CudaDevicePort, type CudaFunction, type DeviceBuffer, type DeviceGraphs, type DeviceMatrix, type GemmCall, type KernelParameter } from '../../../src/runtime/cuda/cuda.ts';
import { bf16Bits, bf16Value, f16Bits, f16Value } from '../../../src/runtime/cuda/host-data.ts';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { simulateQuantizeEntry } from './simulated-quantize.ts';

/** `data`'s bytes as elements of `type` (data may be a view into a larger allocation). */
export const elementsOf = <T>(type: { new(buffer: ArrayBufferLike, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number }, data: Uint8Array): T =>
  new type(data.buffer, data.byteOffset, Math.floor(data.byteLength / type.BYTES_PER_ELEMENT));

export class SimulatedDevice implements CudaDevicePort {
  /** Allocations by their pointer. */
  readonly memory = new Map<bigint, Uint8Array>();
  readonly launched: string[] = [];
  /** copyFrom calls so far: the device→device copies. */
  copies = 0;
  /** fill calls so far: the memsets. */
  fills = 0;
  /** Graphs captured and replays launched so far. */
  captures = 0;
  graphLaunches = 0;
  private next = 0x1000n;
  /** The calls recorded by the capture under way, if one is. */
  private recording: (() => void)[] | undefined;

  readonly graphs: DeviceGraphs = {
    begin: () => {
      if (this.recording !== undefined) throw new Error('beginCapture while a capture is under way');
      this.recording = [];
    },
    end: () => {
      const calls = this.recording;
      if (calls === undefined) throw new Error('endCapture without beginCapture');
      this.recording = undefined;
      this.captures++;
      let destroyed = false;
      return {
        nodes: calls.length,
        launch: () => {
          this.refuseWhileCapturing('a graph launch');
          if (destroyed) throw new Error('no such CUDA graph (destroyed?)');
          this.graphLaunches++;
          for (const call of calls) call();
        },
        destroy: () => { destroyed = true; },
      };
    },
    abort: () => { this.recording = undefined; },
  };

  /** A port like this one but without CUDA graphs, as on a driver older than CUDA 11.4. */
  withoutGraphs(): this {
    Object.defineProperty(this, 'graphs', { value: undefined });
    return this;
  }

  /** What the addon refuses during a capture (native/cuda-driver.cc), refused alike. */
  private refuseWhileCapturing(what: string): void {
    if (this.recording !== undefined) throw new Error(`${what} while a CUDA graph is being captured (only launches, device copies, fills and GEMMs can be recorded)`);
  }

  /** `call` now, or recorded for the graph under capture. */
  private runOrRecord(call: () => void): void {
    if (this.recording !== undefined) this.recording.push(call);
    else call();
  }

  constructor(private readonly manifests: readonly CudaManifestKernel[]) {}

  loadModule(): { function(symbol: string): CudaFunction } {
    return { function: (symbol) => ({ symbol, handle: 0 }) };
  }

  /** The bytes from `pointer` to the end of the allocation it lies in (a view's pointer lies inside one). */
  bytesAt(pointer: bigint): Uint8Array | undefined {
    const exact = this.memory.get(pointer);
    if (exact !== undefined) return exact;
    for (const [base, data] of this.memory) if (pointer > base && pointer < base + BigInt(data.byteLength)) return data.subarray(Number(pointer - base));
    return undefined;
  }

  alloc(bytes: number): DeviceBuffer {
    this.refuseWhileCapturing('cuMemAlloc');
    const pointer = this.next;
    this.next += BigInt(bytes + 256);
    const data = new Uint8Array(bytes);
    this.memory.set(pointer, data);
    return this.buffer(pointer, data, () => this.memory.delete(pointer));
  }

  private buffer(pointer: bigint, data: Uint8Array, free: () => void): DeviceBuffer {
    const bytesOf = (view: ArrayBufferView) => new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    return {
      pointer, bytes: data.byteLength,
      upload: (source) => {
        this.refuseWhileCapturing('a host→device copy');
        data.set(bytesOf(source));
      },
      download: (destination) => {
        this.refuseWhileCapturing('a device→host copy');
        bytesOf(destination).set(data.subarray(0, destination.byteLength));
      },
      fill: (byte, count = data.byteLength) => this.runOrRecord(() => {
        this.fills++;
        data.fill(byte, 0, count);
      }),
      copyFrom: (source, count, offset = 0) => this.runOrRecord(() => {
        this.copies++;
        data.set(this.bytesAt(source.pointer)!.subarray(0, count), offset);
      }),
      view: (offset, bytes) => this.buffer(pointer + BigInt(offset), data.subarray(offset, offset + bytes), () => {}),
      free,
    };
  }

  synchronize(): void {
    this.refuseWhileCapturing('a wait for the device');
  }

  /** cuBLAS's GEMM in float64 from the operands' stored values, rounded once into out's type (`withoutGemm` for a port with none). */
  readonly gemm? = (call: GemmCall): void => {
    // The call's matrices as they are now (a caller may reuse its objects).
    const recorded: GemmCall = { ...call, a: { ...call.a }, b: { ...call.b }, out: { ...call.out } };
    this.runOrRecord(() => this.runGemm(recorded));
  };

  private runGemm(call: GemmCall): void {
    const { m, n, k } = gemmShape(call);
    this.launched.push('gemm');
    const a = this.matrix(call.a), b = this.matrix(call.b), out = this.matrix(call.out);
    const alpha = call.alpha ?? 1, beta = call.beta ?? 0;
    const aAt = call.transposeA ? (i: number, p: number) => a.get(p, i) : (i: number, p: number) => a.get(i, p);
    const bAt = call.transposeB ? (p: number, j: number) => b.get(j, p) : (p: number, j: number) => b.get(p, j);
    const result = new Float64Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += aAt(i, p) * bAt(p, j);
        result[i * n + j] = alpha * sum + (beta === 0 ? 0 : beta * out.get(i, j));
      }
    }
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out.set(i, j, result[i * n + j]!);
  }

  /** A port like this one but with no BLAS library, as on a machine without cuBLAS. */
  withoutGemm(): this {
    Object.defineProperty(this, 'gemm', { value: undefined });
    return this;
  }

  /** Element access to a DeviceMatrix in this device's memory. */
  private matrix(x: DeviceMatrix): { get(i: number, j: number): number; set(i: number, j: number, v: number): void } {
    const data = this.bytesAt(x.buffer.pointer);
    if (data === undefined) throw new Error(`gemm: no buffer at ${x.buffer.pointer}`);
    const ld = x.ld ?? x.columns, offset = x.offset ?? 0;
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (x.type === 'f32') {
      return { get: (i, j) => view.getFloat32(offset + (i * ld + j) * 4, true), set: (i, j, v) => view.setFloat32(offset + (i * ld + j) * 4, v, true) };
    }
    const [decode, encode] = x.type === 'f16' ? [f16Value, f16Bits] : [bf16Value, bf16Bits];
    return {
      get: (i, j) => decode(view.getUint16(offset + (i * ld + j) * 2, true)),
      set: (i, j, v) => view.setUint16(offset + (i * ld + j) * 2, encode(v), true),
    };
  }

  /** Runs the kernel now, or records it with its arguments' values of now (the launchers reuse their parameter objects). */
  launch(fn: CudaFunction, grid: readonly number[], block: readonly number[], shared: number, parameters: readonly KernelParameter[]): void {
    if (this.recording === undefined) return this.execute(fn, grid, block, shared, parameters);
    const values = parameters.map((p) => ({ ...p }) as KernelParameter), gridNow = [...grid], blockNow = [...block];
    this.recording.push(() => this.execute(fn, gridNow, blockNow, shared, values));
  }

  /** One launch of `fn`, computed from the buffers its parameters point at. */
  protected execute(fn: CudaFunction, _grid: readonly number[], _block: readonly number[], _shared: number, parameters: readonly KernelParameter[]): void {
    // A prologue (the forward's u/v kernel) computes u and v; the role's main launch below
    // computes everything it writes, u and v included (the same values again).
    const prologueOf = this.manifests.find((k) => k.launches.some((l) => l.prologue?.symbol === fn.symbol));
    const kernel = prologueOf ?? this.manifests.find((k) => k.launches.some((l) => l.symbol === fn.symbol));
    if (kernel === undefined) throw new Error(`no kernel has symbol ${fn.symbol}`);
    const entry = prologueOf !== undefined ? 'adapterActivations' : kernel.launches.find((l) => l.symbol === fn.symbol)!.entryPoint;
    this.launched.push(fn.symbol);
    const buffers = kernel.bindings.filter((b) => b.elementType !== 'params').sort((a, b) => a.binding - b.binding);
    const tokens = parameters[buffers.length]!.value as number;
    const scale = parameters[buffers.length + 1]!.value as number;
    const bytes = new Map(buffers.map((b, i) => [b.name, this.bytesAt(parameters[i]!.value as bigint)!]));
    if (simulateQuantizeEntry(entry, kernel.kernel, kernel.constants, (name) => bytes.get(name)!)) return;
    const c = (name: string) => kernel.constants[name] as number;
    const f32 = (name: string) => elementsOf(Float32Array, bytes.get(name)!);
    /** A binding's values in its element type (bf16 or fp16 activations, f32 otherwise). */
    const values = (name: string) => {
      const data = bytes.get(name);
      if (data === undefined) throw new Error(`${kernel.kernel} has no binding ${name}`);
      const type = buffers.find((b) => b.name === name)!.elementType;
      if (type === 'f32') {
        const raw = elementsOf(Float32Array, data);
        return { get: (i: number) => raw[i]!, set: (i: number, v: number) => { raw[i] = v; } };
      }
      const raw = elementsOf(Uint16Array, data);
      const [decode, encode] = type === 'f16' ? [f16Value, f16Bits] : [bf16Value, bf16Bits];
      return { get: (i: number) => decode(raw[i]!), set: (i: number, v: number) => { raw[i] = encode(v); } };
    };
    const has = (name: string) => bytes.has(name);
    const T = tokens, N = c('OUT_FEATURES'), L = c('GROUPS'), r = c('RANK');
    // drop(u) and drop(dv·Aᵀ): the dropout multipliers (1/(1−p) kept, 0 dropped), when bound.
    const multiplier = has('dropoutMultiplier') ? values('dropoutMultiplier') : undefined;
    const drop = (t: number, k: number) => multiplier?.get(t * L + k) ?? 1;
    /** u = pool(x) and v = drop(u)·A of token t into their bindings; v's values (unrounded) returned. */
    const adapterActivations = (t: number): number[] => {
      const x = values('input'), u = values('pooledInput'), v = values('adapterActivation'), ab = f32('adapterWeights'), g = c('GROUP_SIZE'), K = c('IN_FEATURES');
      const pooled: number[] = [];
      for (let k = 0; k < L; k++) {
        let sum = 0;
        for (let i = k * g; i < Math.min((k + 1) * g, K); i++) sum += x.get(t * K + i);
        pooled.push(c('POOLING_FACTOR') * sum);
        u.set(t * L + k, pooled[k]!);
      }
      const vt: number[] = [];
      for (let j = 0; j < r; j++) {
        let sum = 0;
        for (let k = 0; k < L; k++) sum += drop(t, k) * pooled[k]! * ab[k * r + j]!;
        vt.push(sum);
        v.set(t * r + j, sum);
      }
      return vt;
    };
    if (entry === 'adapterActivations') {
      for (let t = 0; t < T; t++) adapterActivations(t);
      return;
    }
    if (entry === 'forward' || entry === 'decode' || entry === 'backwardData' || entry === 'dequantize') {
      const K = c(entry === 'dequantize' ? 'PADDED_IN_FEATURES' : 'IN_FEATURES'), g = c('GROUP_SIZE'), bits = c('BITS');
      const qweight = elementsOf(Uint32Array, bytes.get('qweight')!);
      const code = (i: number, o: number) => {
        const first = i * bits, word = first >>> 5, shift = first & 31;
        let value = qweight[word * N + o]! >>> shift;
        if (shift + bits > 32) value |= qweight[(word + 1) * N + o]! << (32 - shift);
        return value & ((1 << bits) - 1);
      };
      const sz = f32('groupScalesAndZeros');
      const w = (i: number, o: number) => sz[Math.floor(i / g) * N + o]! * (code(i, o) - sz[L * N + Math.floor(i / g) * N + o]!);
      if (entry === 'dequantize') {
        const weight = values('weight');
        for (let i = 0; i < K; i++) for (let o = 0; o < N; o++) weight.set(i * N + o, w(i, o));
        return;
      }
      if (entry === 'backwardData') {
        const dy = values('outputGrad'), du = has('pooledInputGrad') ? values('pooledInputGrad') : undefined, dx = values('inputGrad');
        for (let t = 0; t < T; t++) for (let i = 0; i < K; i++) {
          let sum = du ? c('POOLING_FACTOR') * du.get(t * L + Math.floor(i / g)) : 0;
          for (let o = 0; o < N; o++) sum += dy.get(t * N + o) * w(i, o);
          dx.set(t * K + i, sum);
        }
        return;
      }
      const x = values('input'), y = values('output');
      if (!has('adapterWeights')) {
        for (let t = 0; t < T; t++) for (let o = 0; o < N; o++) {
          let sum = 0;
          for (let i = 0; i < K; i++) sum += x.get(t * K + i) * w(i, o);
          y.set(t * N + o, sum);
        }
        return;
      }
      const ab = f32('adapterWeights');
      for (let t = 0; t < T; t++) {
        const vt = adapterActivations(t);
        for (let o = 0; o < N; o++) {
          let sum = 0;
          for (let i = 0; i < K; i++) sum += x.get(t * K + i) * w(i, o);
          for (let j = 0; j < r; j++) sum += scale * vt[j]! * ab[L * r + j * N + o]!;
          y.set(t * N + o, sum);
        }
      }
      return;
    }
    const dy = values('outputGrad'), u = values('pooledInput'), v = values('adapterActivation'), dv = values('adapterActivationGrad'), du = values('pooledInputGrad');
    const ab = f32('adapterWeights'), grads = f32('adapterWeightGrads');
    if (entry === 'adapterOutputGrads') {
      for (let t = 0; t < T; t++) for (let j = 0; j < r; j++) {
        let sum = 0;
        for (let o = 0; o < N; o++) sum += dy.get(t * N + o) * ab[L * r + j * N + o]!;
        dv.set(t * r + j, scale * sum);
      }
      for (let j = 0; j < r; j++) for (let o = 0; o < N; o++) {
        let sum = 0;
        for (let t = 0; t < T; t++) sum += v.get(t * r + j) * dy.get(t * N + o);
        grads[L * r + j * N + o] = scale * sum;
      }
      return;
    }
    for (let t = 0; t < T; t++) for (let k = 0; k < L; k++) {
      let sum = 0;
      for (let j = 0; j < r; j++) sum += dv.get(t * r + j) * ab[k * r + j]!;
      du.set(t * L + k, drop(t, k) * sum);
    }
    for (let k = 0; k < L; k++) for (let j = 0; j < r; j++) {
      let sum = 0;
      for (let t = 0; t < T; t++) sum += drop(t, k) * u.get(t * L + k) * dv.get(t * r + j);
      grads[k * r + j] = sum;
    }
  }
}
