import { describe, expect, it } from 'vitest';
import type { CudaDevicePort, DeviceBuffer, GemmCall } from '../../../src/runtime/cuda/cuda.ts';
import { eventProfiledPort } from '../../../src/runtime/cuda/event-profiled-port.ts';
import { describeProfile, kernelKind, profiledPort, profileMethodOf, type ProfileEntry } from '../../../src/runtime/cuda/profiled-port.ts';

/** A port whose every call advances a fake clock by a known amount, so the charges can be checked exactly. */
function fakePort(clock: { now: number }, costs: Record<string, number>): CudaDevicePort & { syncs: number } {
  const port = {
    syncs: 0,
    loadModule: () => ({ function: (symbol: string) => ({ symbol, handle: 0 }) }),
    alloc: (bytes: number): DeviceBuffer => ({
      pointer: 1n, bytes,
      upload: () => { clock.now += costs['upload']!; },
      download: () => { clock.now += costs['download']!; },
      fill: () => {}, copyFrom: () => {}, view: () => { throw new Error('the profile tests take no views'); }, free: () => {},
    }),
    launch: (fn: { symbol: string }) => { clock.now += costs[fn.symbol]!; },
    synchronize: () => { port.syncs++; },
  };
  return port;
}

/** A name's calls and time, its first call (charged apart) included. */
function total(entries: readonly ProfileEntry[], name: string): { kind: string; calls: number; milliseconds: number } | undefined {
  const both = entries.filter((e) => e.name === name || e.name === `${name}, first call`);
  if (both.length === 0) return undefined;
  return { kind: both[0]!.kind, calls: both.reduce((n, e) => n + e.calls, 0), milliseconds: both.reduce((n, e) => n + e.milliseconds, 0) };
}

describe('profiled cuda port', () => {
  it('charges each launch and copy its own time and the gaps between them to the host', () => {
    const clock = { now: 0 };
    const inner = fakePort(clock, { upload: 2, download: 3, 'attention_forward': 5, 'rmsnorm_c8_f32__forward': 1 });
    const port = profiledPort(inner, () => clock.now);
    const buffer = port.alloc(16);
    buffer.upload(new Float32Array(4));
    clock.now += 9; // host work
    const attention = port.loadModule(new Uint8Array()).function('attention_forward');
    port.launch(attention, [1, 1, 1], [1, 1, 1], 0, []);
    port.launch(attention, [1, 1, 1], [1, 1, 1], 0, []);
    port.launch(port.loadModule(new Uint8Array()).function('rmsnorm_c8_f32__forward'), [1, 1, 1], [1, 1, 1], 0, []);
    buffer.download(new Float32Array(4));
    expect(inner.syncs).toBe(5);
    const entries = port.profile();
    expect(total(entries, 'attention_forward')).toEqual({ kind: 'attention', calls: 2, milliseconds: 10 });
    // The first call of a name apart (it loads the module), the rest under the name.
    expect(entries.find((e) => e.name === 'attention_forward')).toEqual({ name: 'attention_forward', kind: 'attention', calls: 1, milliseconds: 5 });
    expect(entries.find((e) => e.name === 'attention_forward, first call')).toEqual({ name: 'attention_forward, first call', kind: 'attention', calls: 1, milliseconds: 5 });
    expect(total(entries, 'copy host→device')!.milliseconds).toBe(2);
    expect(total(entries, 'copy device→host')!.milliseconds).toBe(3);
    expect(entries.find((e) => e.kind === 'host')).toEqual({ name: 'host between device calls', kind: 'host', calls: 5, milliseconds: 9 });
    expect(describeProfile(port.profile(), 'waits')).toMatch(/every call waited for\): 25\.0 ms \(100\.0 %\) in all; attention 10\.0 ms \(40\.0 %\)/);
  });

  it('captures untimed (no wait during a capture) and charges each graph replay as one call of kind graph', () => {
    const clock = { now: 0 };
    const recorded: (() => void)[] = [];
    let capturing = false;
    const base = fakePort(clock, { 'rmsnorm_c8_f32__forward': 1 });
    const inner: CudaDevicePort = {
      ...base,
      launch: (fn, grid, block, shared, parameters) => {
        if (capturing) recorded.push(() => base.launch(fn, grid, block, shared, parameters));
        else base.launch(fn, grid, block, shared, parameters);
      },
      synchronize: () => {
        if (capturing) throw new Error('a wait during a capture');
        base.synchronize();
      },
      graphs: {
        begin: () => { capturing = true; },
        end: () => {
          capturing = false;
          return { nodes: recorded.length, launch: () => recorded.forEach((call) => call()), destroy: () => {} };
        },
        abort: () => { capturing = false; },
      },
    };
    const port = profiledPort(inner, () => clock.now);
    const rmsnorm = port.loadModule(new Uint8Array()).function('rmsnorm_c8_f32__forward');
    port.graphs!.begin();
    port.launch(rmsnorm, [1, 1, 1], [1, 1, 1], 0, []);
    port.launch(rmsnorm, [1, 1, 1], [1, 1, 1], 0, []);
    const graph = port.graphs!.end();
    expect(graph.nodes).toBe(2);
    expect(port.profile().filter((e) => e.kind !== 'host')).toEqual([]);
    graph.launch();
    graph.launch();
    const entries = port.profile();
    expect(total(entries, 'graph replay (2 device calls)')).toEqual({ kind: 'graph', calls: 2, milliseconds: 4 });
    expect(total(entries, 'rmsnorm_c8_f32__forward')).toBeUndefined();
    expect(profiledPort(fakePort(clock, {})).graphs).toBeUndefined();
  });

  it('passes cuBLAS calls through, charged by types and shape, and has none when the port has none', () => {
    const clock = { now: 0 };
    const gemms: number[] = [];
    const inner = { ...fakePort(clock, {}), gemm: (call: GemmCall) => { gemms.push(call.out.rows); clock.now += 4; } };
    const port = profiledPort(inner, () => clock.now);
    const buffer = port.alloc(4096);
    const matrix = (rows: number, columns: number, type: 'bf16' | 'f32') => ({ buffer, rows, columns, type });
    port.gemm!({ a: matrix(3, 5, 'bf16'), b: matrix(7, 5, 'bf16'), transposeB: true, out: matrix(3, 7, 'f32') });
    expect(gemms).toEqual([3]);
    expect(port.profile().find((e) => e.kind === 'gemm')).toEqual({ name: 'gemm bf16→f32 3×7×5, first call', kind: 'gemm', calls: 1, milliseconds: 4 });
    expect(() => port.gemm!({ a: matrix(3, 5, 'bf16'), b: matrix(7, 5, 'bf16'), out: matrix(3, 7, 'f32') })).toThrow(/op\(a\) is 3×5, op\(b\) 7×5/);
    expect(profiledPort(fakePort(clock, {})).gemm).toBeUndefined();
  });

  it('with events, charges each call its GPU time and the gaps between calls to the GPU\'s idle, never waiting for a call', () => {
    // A GPU with its own clock: a launch starts when both the GPU is free and the host has
    // queued it (host time at the call), and runs for its cost; events stamp the GPU's clock.
    const host = { now: 0 };
    let gpuFree = 0;
    const stamps: number[] = [];
    const costs: Record<string, number> = { 'attention_forward': 5, 'swiglu_f32__forward': 1, upload: 2 };
    const queue = (cost: number) => { gpuFree = Math.max(gpuFree, host.now) + cost; };
    let syncs = 0;
    const inner = {
      ...fakePort(host, {}),
      synchronize: () => { syncs++; },
      alloc: (bytes: number): DeviceBuffer => ({ pointer: 1n, bytes, upload: () => queue(costs['upload']!), download: () => {}, fill: () => {}, copyFrom: () => {}, view: () => { throw new Error('the profile tests take no views'); }, free: () => {} }),
      launch: (fn: { symbol: string }) => queue(costs[fn.symbol]!),
    };
    let resets = 0;
    const events = {
      // An event completes when the GPU reaches it: after what is queued, not before the host records it.
      record: () => stamps.push(Math.max(gpuFree, host.now)) - 1,
      elapsed: (start: number, end: number) => stamps[end]! - stamps[start]!,
      reset: () => { stamps.length = 0; resets++; },
    };
    const port = eventProfiledPort(inner, events);
    const attention = port.loadModule(new Uint8Array()).function('attention_forward');
    const swiglu = port.loadModule(new Uint8Array()).function('swiglu_f32__forward');
    port.launch(attention, [1, 1, 1], [1, 1, 1], 0, []); // GPU 0–5
    port.launch(swiglu, [1, 1, 1], [1, 1, 1], 0, []); // queued at once: 5–6, no idle
    host.now = 10; // the host busy, the GPU waits from 6 to 10
    port.alloc(16).upload(new Float32Array(4)); // 10–12
    port.launch(attention, [1, 1, 1], [1, 1, 1], 0, []); // 12–17
    expect(syncs).toBe(0); // nothing waited for until the profile is read
    const entries = port.profile();
    expect(syncs).toBe(1);
    expect(resets).toBe(1);
    expect(total(entries, 'attention_forward')).toEqual({ kind: 'attention', calls: 2, milliseconds: 10 });
    expect(total(entries, 'swiglu_f32__forward')!.milliseconds).toBe(1);
    expect(total(entries, 'copy host→device')!.milliseconds).toBe(2);
    expect(entries.find((e) => e.kind === 'idle')).toEqual({ name: 'gpu idle between device calls', kind: 'idle', calls: 0, milliseconds: 4 });
    // A second reading adds the calls since, and not the gap across the readings.
    host.now = 30;
    port.launch(swiglu, [1, 1, 1], [1, 1, 1], 0, []);
    const again = port.profile();
    expect(total(again, 'swiglu_f32__forward')!.calls).toBe(2);
    expect(total(again, 'gpu idle between device calls')!.milliseconds).toBe(4);
    expect(describeProfile(port.profile(), port.method)).toMatch(/^profile \(QALC_CUDA_PROFILE; CUDA events around every call, GPU time\): 18\.0 ms/);
  });

  it('reads QALC_CUDA_PROFILE: events where the driver has them, waits on request, refusing other values', () => {
    expect(profileMethodOf(undefined, true)).toBeUndefined();
    expect(profileMethodOf('0', true)).toBeUndefined();
    expect(profileMethodOf('1', true)).toBe('events');
    expect(profileMethodOf('1', false)).toBe('waits');
    expect(profileMethodOf('events', true)).toBe('events');
    expect(profileMethodOf('waits', true)).toBe('waits');
    expect(() => profileMethodOf('yes', true)).toThrow(/QALC_CUDA_PROFILE=yes: expected 1, events or waits/);
  });

  it('names kernels by their kind', () => {
    expect(kernelKind('forward_k4096_n4096_b4_g32_qalora_r64_mean_dropout_bf16__forward')).toBe('linear');
    expect(kernelKind('adapter_grad_l128_n11008_r64_dropout_bf16__adapterOutputGradsTensorCore')).toBe('linear');
    expect(kernelKind('dequantize_kp4096_n11008_b4_g32_bf16__dequantize')).toBe('linear');
    expect(kernelKind('merge_l128_n4096_g32_r64_mean_bf16__merge')).toBe('linear');
    expect(kernelKind('dropout_f32__multipliers')).toBe('other');
    expect(kernelKind('lm_head_c4096_v32000_f32__backward')).toBe('lm_head');
    expect(kernelKind('attention_backward_dq')).toBe('attention');
    expect(kernelKind('swiglu_f32__forward')).toBe('other');
  });
});
