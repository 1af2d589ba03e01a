// The cuda device ops of a spec over a GPU that does nothing, for the benchmarks that measure the
// host's side of a training step without a GPU (host-overhead.ts: its JavaScript;
// device-memory.ts: its allocations). Launches pack their parameters as the driver does, so the
// host pays what it pays on a real device; buffers have addresses but no memory; a download
// fills ones (the loss and gradient norm stay finite). The copies and fills are counted by kind
// (IdleCounts), as the launches are by the ops, and so are the convert kernel's launches (the
// re-encodings between float32 and the activation type). Its CUDA graphs record how many calls a
// capture saw and replay nothing: what a replayed token costs the host is what is left.
import { resolve } from 'node:path';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { ParameterPacker, type CudaDevicePort, type DeviceBuffer } from '../../../src/runtime/cuda/cuda.ts';
import { deviceOps, type DeviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { graphSettingOf } from '../../../src/runtime/cuda/device-decode.ts';
import { stepGraphPort } from '../../../src/runtime/cuda/step-graph.ts';

/** What an idle port was asked to move so far, by kind. */
export interface IdleCounts {
  uploads: number;
  downloads: number;
  /** copyFrom: device→device. */
  copies: number;
  fills: number;
  /** Launches of the convert model op (any entry). */
  converts: number;
  /** Graph launches (replays). */
  graphLaunches: number;
}

export function idlePort(counts: IdleCounts = { uploads: 0, downloads: 0, copies: 0, fills: 0, converts: 0, graphLaunches: 0 }): CudaDevicePort {
  let next = 0x1000n;
  /** Calls seen by the capture under way (undefined: none is). */
  let recorded: number | undefined;
  const record = () => {
    if (recorded !== undefined) recorded++;
  };
  const packer = new ParameterPacker();
  const buffer = (pointer: bigint, bytes: number): DeviceBuffer => ({
    pointer, bytes,
    upload: () => { counts.uploads++; },
    download: (destination) => {
      counts.downloads++;
      if (destination instanceof Float32Array) destination.fill(1);
    },
    fill: () => { counts.fills++; record(); },
    copyFrom: () => { counts.copies++; record(); },
    view: (offset, viewBytes) => buffer(pointer + BigInt(offset), viewBytes),
    free: () => {},
  });
  return {
    loadModule: () => ({ function: (symbol) => ({ symbol, handle: 0 }) }),
    alloc(bytes): DeviceBuffer {
      const pointer = next;
      next += BigInt(bytes + 256);
      return buffer(pointer, bytes);
    },
    launch: (fn, _grid, _block, _shared, parameters) => {
      packer.pack(parameters);
      if (fn.symbol.startsWith('convert_')) counts.converts++;
      record();
    },
    synchronize: () => {},
    gemm: () => { record(); },
    graphs: {
      begin: () => { recorded = 0; },
      end: () => {
        const nodes = recorded ?? 0;
        recorded = undefined;
        return { nodes, launch: () => { counts.graphLaunches++; }, destroy: () => {} };
      },
      abort: () => { recorded = undefined; },
    },
  };
}

/** The spec at `specArg` (a path), its plan, and its cuda device ops over idlePort(). */
export async function idleDeviceOps(specArg: string): Promise<{ specPath: string; plan: Plan; ops: DeviceOps; counts: IdleCounts }> {
  const specPath = resolve(specArg);
  const front = frontEnd(specPath);
  if (front.plan === undefined) throw new Error(front.diagnostics.map((d) => d.message).join('\n'));
  const { manifest } = await loadCompiledKernels(front.plan, { targets: ['cuda'] });
  const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
  const counts: IdleCounts = { uploads: 0, downloads: 0, copies: 0, fills: 0, converts: 0, graphLaunches: 0 };
  // The training step's backward replayed as `qalc train --backend cuda` replays it (QALC_CUDA_GRAPH=0: launched).
  const step = stepGraphPort(idlePort(counts), graphSettingOf(process.env['QALC_CUDA_GRAPH']) ? undefined : 'QALC_CUDA_GRAPH=0');
  const ops: DeviceOps = { ...deviceOps(step.port, { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpuBackend().ops, 'bf16'), stepGraph: step.graph };
  return { specPath, plan: front.plan, ops, counts };
}
