// Where a cuda step's time goes: a CudaDevicePort that waits for the GPU after every launch and
// every copy, and charges the wait to the kernel (by symbol) or the copy's direction, and the
// time between device calls to the host (the JavaScript that decides what to launch). It
// serialises the host and the GPU, so a profiled run is slower than a plain one; the split, not
// the total, is what it measures. `QALC_CUDA_PROFILE=1 qalc train --backend cuda …` turns it on
// (backend.ts); the table is the report's last lines and summary.json's device.profile.
import { performance } from 'node:perf_hooks';
import { LOWERED_ROLES } from '../../ir/passes/share-layers.ts';
import { gemmShape, type CudaDevicePort, type CudaFunction, type DeviceBuffer, type Dim3, type GemmCall, type KernelParameter } from './cuda.ts';

export interface ProfileEntry {
  /** A kernel's symbol, or `copy host→device` and the like. */
  readonly name: string;
  /** linear (the quantized layers' kernels), attention, lm_head, gemm (cuBLAS), other (the rest of the model ops), copy, host. */
  readonly kind: 'linear' | 'attention' | 'lm_head' | 'gemm' | 'other' | 'copy' | 'host';
  readonly calls: number;
  readonly milliseconds: number;
}

export interface ProfiledPort extends CudaDevicePort {
  /** Every entry so far, the costliest first. */
  profile(): ProfileEntry[];
}

/** Kernels are named by what they are (src/backends/cuda/model-op-names.ts, the linear kernels' names in emit.ts). */
export function kernelKind(symbol: string): ProfileEntry['kind'] {
  if (symbol.startsWith('attention')) return 'attention';
  if (symbol.startsWith('lm_head')) return 'lm_head';
  // A quantized layer's kernel is `<role>_<shape>` (adapter_grad_l128_…, forward_k4096_…); no model op starts with a role.
  if (LOWERED_ROLES.some((role) => symbol.startsWith(`${role}_`))) return 'linear';
  return 'other';
}

const HOST = 'host between device calls';

export function profiledPort(inner: CudaDevicePort, clock: () => number = () => performance.now()): ProfiledPort {
  const entries = new Map<string, { kind: ProfileEntry['kind']; calls: number; milliseconds: number }>();
  let lastDeviceEnd = clock();
  const charge = (name: string, kind: ProfileEntry['kind'], milliseconds: number, call = true) => {
    const entry = entries.get(name) ?? { kind, calls: 0, milliseconds: 0 };
    if (call) entry.calls++;
    entry.milliseconds += milliseconds;
    entries.set(name, entry);
  };
  // The GPU is idle between timed calls, so the time since the last one ended is the host's.
  const timed = <T>(name: string, kind: ProfileEntry['kind'], work: () => T): T => {
    const start = clock();
    charge(HOST, 'host', start - lastDeviceEnd);
    const result = work();
    inner.synchronize();
    lastDeviceEnd = clock();
    charge(name, kind, lastDeviceEnd - start);
    return result;
  };
  const wrap = (buffer: DeviceBuffer): DeviceBuffer => ({
    pointer: buffer.pointer,
    bytes: buffer.bytes,
    upload: (source) => timed('copy host→device', 'copy', () => buffer.upload(source)),
    download: (destination) => timed('copy device→host', 'copy', () => buffer.download(destination)),
    fill: (byte, bytes) => timed('fill', 'copy', () => buffer.fill(byte, bytes)),
    copyFrom: (source, bytes, offset) => timed('copy device→device', 'copy', () => buffer.copyFrom(source, bytes, offset)),
    free: () => buffer.free(),
  });
  return {
    loadModule: (image) => inner.loadModule(image),
    alloc: (bytes) => wrap(inner.alloc(bytes)),
    launch(fn: CudaFunction, grid: Dim3, block: Dim3, sharedBytes: number, parameters: readonly KernelParameter[]) {
      timed(fn.symbol, kernelKind(fn.symbol), () => inner.launch(fn, grid, block, sharedBytes, parameters));
    },
    synchronize: () => inner.synchronize(),
    // A cuBLAS call by its types and shape (its caller is not known here): `gemm bf16→f32 2048×32000×4096`.
    ...(inner.gemm === undefined ? {} : {
      gemm: (call: GemmCall) => {
        const { m, n, k } = gemmShape(call);
        timed(`gemm ${call.a.type}→${call.out.type} ${m}×${n}×${k}`, 'gemm', () => inner.gemm!(call));
      },
    }),
    profile() {
      // The host's time up to this reading belongs to what came before it (a trainer reads the
      // profile at each step's start and end), not to the next device call.
      const now = clock();
      charge(HOST, 'host', now - lastDeviceEnd, false);
      lastDeviceEnd = now;
      return [...entries].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.milliseconds - a.milliseconds);
    },
  };
}

/** The profile as lines: the time by kind, then the costliest entries. */
export function describeProfile(entries: readonly ProfileEntry[], top = 20): string {
  const total = entries.reduce((sum, e) => sum + e.milliseconds, 0);
  const byKind = new Map<string, number>();
  for (const e of entries) byKind.set(e.kind, (byKind.get(e.kind) ?? 0) + e.milliseconds);
  const share = (ms: number) => `${ms.toFixed(1)} ms (${total > 0 ? ((100 * ms) / total).toFixed(1) : '0.0'} %)`;
  const lines = [`profile (QALC_CUDA_PROFILE; every call waited for): ${share(total)} in all; ${[...byKind].sort((a, b) => b[1] - a[1]).map(([kind, ms]) => `${kind} ${share(ms)}`).join(', ')}`];
  for (const e of entries.slice(0, top)) lines.push(`  ${e.name}: ${e.calls} calls, ${share(e.milliseconds)}, ${(e.milliseconds / e.calls).toFixed(3)} ms each`);
  return lines.join('\n');
}
