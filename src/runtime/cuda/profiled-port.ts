// Where a cuda step's time goes: a CudaDevicePort that waits for the GPU after every launch and
// every copy, and charges the wait to the kernel (by symbol) or the copy's direction, and the
// time between device calls to the host (the JavaScript that decides what to launch). It
// serialises the host and the GPU, so a profiled run is slower than a plain one, and each
// call's time includes its launch latency; the split, not the total, is what it measures.
// `QALC_CUDA_PROFILE=waits qalc train --backend cuda …` turns it on (backend.ts); the table is
// the report's last lines and summary.json's device.profile. QALC_CUDA_PROFILE=1 (or events)
// times the calls on the GPU instead, without waiting (event-profiled-port.ts), where the
// driver has events.
//
// A CUDA graph's capture runs untimed (nothing runs then, and a capture cannot wait), and each
// replay is one call, `graph replay (N device calls)`, of kind graph: a replayed decode step is
// timed whole, not kernel by kernel (QALC_CUDA_GRAPH=0 for that).
import { performance } from 'node:perf_hooks';
import { LOWERED_ROLES } from '../../ir/passes/share-layers.ts';
import { gemmShape, type CudaDevicePort, type CudaFunction, type DeviceBuffer, type Dim3, type GemmCall, type KernelParameter } from './cuda.ts';

export interface ProfileEntry {
  /** A kernel's symbol, or `copy host→device` and the like. */
  readonly name: string;
  /**
   * linear (the quantized layers' kernels), attention, lm_head, gemm (cuBLAS), other (the rest of
   * the model ops), copy; host (waits: the JavaScript between device calls) or idle (events: the
   * GPU with nothing queued between two calls, waiting for the host).
   */
  readonly kind: 'linear' | 'attention' | 'lm_head' | 'gemm' | 'other' | 'copy' | 'graph' | 'host' | 'idle';
  readonly calls: number;
  readonly milliseconds: number;
}

export interface ProfiledPort extends CudaDevicePort {
  /** Every entry so far, the costliest first. */
  profile(): ProfileEntry[];
  /** How the calls were timed, for the report's first line. */
  readonly method: ProfileMethod;
}

/** waits: every call waited for by the host and timed there; events: CUDA events around each call, read at step ends. */
export type ProfileMethod = 'waits' | 'events';

/** QALC_CUDA_PROFILE's value as a method: events (1, events) where the driver has them, else waits; undefined when unset. */
export function profileMethodOf(value: string | undefined, hasEvents: boolean): ProfileMethod | undefined {
  if (value === undefined || value === '' || value === '0') return undefined;
  if (value === 'waits') return 'waits';
  if (value === '1' || value === 'events') return hasEvents ? 'events' : 'waits';
  throw new RangeError(`QALC_CUDA_PROFILE=${value}: expected 1, events or waits`);
}

/** A running total by entry name, the costliest first when read. */
export class ProfileTotals {
  private readonly entries = new Map<string, { kind: ProfileEntry['kind']; calls: number; milliseconds: number }>();

  /**
   * A call's time under its name; the first call of each name under `<name>, first call`: it pays
   * for loading the kernel (CUDA loads modules lazily) or for cuBLAS choosing its kernel for the
   * shape, up to milliseconds, which would swamp the mean of a name with few calls.
   */
  charge(name: string, kind: ProfileEntry['kind'], milliseconds: number, call = true): void {
    const firstCall = call && kind !== 'host' && kind !== 'idle' && !this.entries.has(name) && !this.entries.has(`${name}, first call`);
    const key = firstCall ? `${name}, first call` : name;
    const entry = this.entries.get(key) ?? { kind, calls: 0, milliseconds: 0 };
    if (call) entry.calls++;
    entry.milliseconds += milliseconds;
    this.entries.set(key, entry);
  }

  sorted(): ProfileEntry[] {
    return [...this.entries].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.milliseconds - a.milliseconds);
  }
}

/** A cuBLAS call by its types and shape (its caller is not known to a port): `gemm bf16→f32 2048×32000×4096`. */
const gemmName = (call: GemmCall): string => {
  const { m, n, k } = gemmShape(call);
  return `gemm ${call.a.type}→${call.out.type} ${m}×${n}×${k}`;
};

/** Kernels are named by what they are (src/backends/cuda/model-op-names.ts, the linear kernels' names in emit.ts). */
export function kernelKind(symbol: string): ProfileEntry['kind'] {
  if (symbol.startsWith('attention')) return 'attention';
  if (symbol.startsWith('lm_head')) return 'lm_head';
  // A quantized layer's kernel is `<role>_<shape>` (adapter_grad_l128_…, forward_k4096_…); no model op starts with a role.
  if (LOWERED_ROLES.some((role) => symbol.startsWith(`${role}_`))) return 'linear';
  return 'other';
}

type Timed = <T>(name: string, kind: ProfileEntry['kind'], work: () => T) => T;

/** `buffer` with its copies passed through `timed` under their direction's name. */
function timedBuffer(buffer: DeviceBuffer, timed: Timed): DeviceBuffer {
  return {
    pointer: buffer.pointer,
    bytes: buffer.bytes,
    upload: (source) => timed('copy host→device', 'copy', () => buffer.upload(source)),
    download: (destination) => timed('copy device→host', 'copy', () => buffer.download(destination)),
    fill: (byte, bytes) => timed('fill', 'copy', () => buffer.fill(byte, bytes)),
    copyFrom: (source, bytes, offset) => timed('copy device→device', 'copy', () => buffer.copyFrom(source, bytes, offset)),
    view: (offset, bytes) => timedBuffer(buffer.view(offset, bytes), timed),
    free: () => buffer.free(),
  };
}

/**
 * `inner` with every launch, copy and cuBLAS call passed through `timed`: a kernel by its symbol,
 * a GEMM by its shape, a graph replay whole; during a capture, straight through.
 */
export function portTimedBy(inner: CudaDevicePort, timedAlways: Timed): CudaDevicePort {
  let capturing = false;
  const timed: Timed = (name, kind, work) => (capturing ? work() : timedAlways(name, kind, work));
  const graphs = inner.graphs;
  return {
    loadModule: (image) => inner.loadModule(image),
    alloc: (bytes) => timedBuffer(inner.alloc(bytes), timed),
    launch(fn: CudaFunction, grid: Dim3, block: Dim3, sharedBytes: number, parameters: readonly KernelParameter[]) {
      timed(fn.symbol, kernelKind(fn.symbol), () => inner.launch(fn, grid, block, sharedBytes, parameters));
    },
    synchronize: () => inner.synchronize(),
    ...(inner.gemm === undefined ? {} : { gemm: (call: GemmCall) => timed(gemmName(call), 'gemm', () => inner.gemm!(call)) }),
    ...(graphs === undefined ? {} : {
      graphs: {
        begin() {
          graphs.begin();
          capturing = true;
        },
        end() {
          capturing = false;
          const graph = graphs.end();
          const name = `graph replay (${graph.nodes} device calls)`;
          return { nodes: graph.nodes, launch: () => timed(name, 'graph', () => graph.launch()), destroy: () => graph.destroy() };
        },
        abort() {
          capturing = false;
          graphs.abort();
        },
      },
    }),
  };
}

const HOST = 'host between device calls';

export function profiledPort(inner: CudaDevicePort, clock: () => number = () => performance.now()): ProfiledPort {
  const totals = new ProfileTotals();
  let lastDeviceEnd = clock();
  // The GPU is idle between timed calls, so the time since the last one ended is the host's.
  const timed = <T>(name: string, kind: ProfileEntry['kind'], work: () => T): T => {
    const start = clock();
    totals.charge(HOST, 'host', start - lastDeviceEnd);
    const result = work();
    inner.synchronize();
    lastDeviceEnd = clock();
    totals.charge(name, kind, lastDeviceEnd - start);
    return result;
  };
  return {
    ...portTimedBy(inner, timed),
    method: 'waits',
    profile() {
      // The host's time up to this reading belongs to what came before it (a trainer reads the
      // profile at each step's start and end), not to the next device call.
      const now = clock();
      totals.charge(HOST, 'host', now - lastDeviceEnd, false);
      lastDeviceEnd = now;
      return totals.sorted();
    },
  };
}

/** The profile as lines: the time by kind, then the costliest entries. */
export function describeProfile(entries: readonly ProfileEntry[], method: ProfileMethod, top = 20): string {
  const total = entries.reduce((sum, e) => sum + e.milliseconds, 0);
  const byKind = new Map<string, number>();
  for (const e of entries) byKind.set(e.kind, (byKind.get(e.kind) ?? 0) + e.milliseconds);
  const share = (ms: number) => `${ms.toFixed(1)} ms (${total > 0 ? ((100 * ms) / total).toFixed(1) : '0.0'} %)`;
  const how = method === 'waits' ? 'every call waited for' : 'CUDA events around every call, GPU time';
  const lines = [`profile (QALC_CUDA_PROFILE; ${how}): ${share(total)} in all; ${[...byKind].sort((a, b) => b[1] - a[1]).map(([kind, ms]) => `${kind} ${share(ms)}`).join(', ')}`];
  // The host's and the idle time are gaps, not calls: no mean a call.
  for (const e of entries.slice(0, top)) lines.push(`  ${e.name}: ${e.calls === 0 ? share(e.milliseconds) : `${e.calls} calls, ${share(e.milliseconds)}, ${(e.milliseconds / e.calls).toFixed(3)} ms each`}`);
  return lines.join('\n');
}
