// Launching the spec's model-op kernels (every op of a step but the linear layers:
// src/backends/cuda/model-ops.ts) from their manifest entries: one module per fatbin, an entry
// point found by op and name, its parameters bound by name in the order the manifest lists them
// — so a renamed or reordered parameter is an error here, never a silently wrong launch — and
// its grid computed from the call's sizes by the rule each kernel's header states
// (src/backends/cuda/model-op-grid.ts, attention's own).
import { modelOpGrid } from '../../backends/cuda/model-op-grid.ts';
import { attentionGrid } from '../../backends/cuda/model-ops/attention.ts';
import type { ModelOp } from '../../backends/cuda/model-ops.ts';
import type { ModelOpManifestKernel } from '../../backends/manifest.ts';
import { reusedParameter, type CudaDevicePort, type CudaFunction, type DeviceBuffer, type Dim3, type ReusedParameter } from './cuda.ts';
import type { ModelOpImage } from './kernels.ts';

/** A launch's arguments by parameter name: a buffer (or null, a null pointer) for a pointer, a number for a scalar. */
export type OpArguments = Readonly<Record<string, DeviceBuffer | null | number>>;

export interface ModelOpLauncher {
  has(op: ModelOp): boolean;
  /** Whether the kernel of `op` has the entry point `entry` (a manifest written before it was added has not). */
  hasEntry(op: ModelOp, entry: string): boolean;
  /** The manifest entry of the kernel of `op` (its constants are the shapes it was compiled for). */
  kernel(op: ModelOp): ModelOpManifestKernel;
  /** The kernel's compile-time constant (a tile size the grid is computed from). */
  constant(op: ModelOp, name: string): number;
  /** One launch; its grid comes from the sizes among `args` as the kernel's header states it. */
  launch(op: ModelOp, entry: string, args: OpArguments): void;
  /** Launches so far. */
  readonly launches: () => number;
}

/** An entry point resolved once: what every launch of it needs besides the call's arguments. */
interface ResolvedEntry {
  readonly manifest: ModelOpManifestKernel;
  readonly entry: ModelOpManifestKernel['entryPoints'][number];
  readonly function: CudaFunction;
  readonly parameterNames: ReadonlySet<string>;
  /** The launch's parameters, set again by every launch of the entry. */
  readonly parameters: readonly ReusedParameter[];
}


export function modelOpLauncher(driver: CudaDevicePort, images: readonly ModelOpImage[]): ModelOpLauncher {
  const byOp = new Map<ModelOp, { manifest: ModelOpManifestKernel; entries: Map<string, ResolvedEntry> }>();
  for (const { manifest, fatbin } of images) {
    if (byOp.has(manifest.op)) throw new Error(`two model-op kernels for ${manifest.op}: ${byOp.get(manifest.op)!.manifest.kernel} and ${manifest.kernel}`);
    const module = driver.loadModule(fatbin);
    const entries = new Map(manifest.entryPoints.map((entry) => [entry.name, {
      manifest, entry, function: module.function(entry.symbol), parameterNames: new Set(entry.parameters.map((p) => p.name)),
      parameters: entry.parameters.map((p) => reusedParameter(p.type)),
    }]));
    byOp.set(manifest.op, { manifest, entries });
  }
  const kernelOf = (op: ModelOp) => {
    const found = byOp.get(op);
    if (found === undefined) throw new Error(`the compiled kernels have no ${op} model op`);
    return found;
  };
  let launches = 0;
  return {
    has: (op) => byOp.has(op),
    hasEntry: (op, entry) => byOp.get(op)?.manifest.entryPoints.some((e) => e.name === entry) ?? false,
    kernel: (op) => kernelOf(op).manifest,
    constant(op, name) {
      const value = kernelOf(op).manifest.constants[name];
      if (value === undefined) throw new Error(`model op ${kernelOf(op).manifest.kernel} has no constant ${name}`);
      return value;
    },
    launch(op, entryName, args) {
      const { manifest, entries } = kernelOf(op);
      const resolved = entries.get(entryName);
      if (resolved === undefined) throw new Error(`model op ${manifest.kernel} has no entry point ${entryName}`);
      const { entry } = resolved;
      // Every parameter must have an argument (below), so more arguments than parameters means one the entry has not.
      let given = 0;
      for (const name in args) given++;
      if (given !== entry.parameters.length) {
        const unknown = Object.keys(args).filter((name) => !resolved.parameterNames.has(name));
        if (unknown.length > 0) throw new Error(`${entry.symbol} has no parameter ${unknown.join(', ')}`);
      }
      const { parameters } = resolved;
      for (let i = 0; i < parameters.length; i++) {
        const p = entry.parameters[i]!;
        const value = args[p.name];
        if (value === undefined) throw new Error(`${entry.symbol}: no argument for ${p.name}`);
        const parameter = parameters[i]!;
        if (parameter.kind === 'pointer') {
          if (typeof value === 'number') throw new Error(`${entry.symbol}: ${p.name} is a pointer, given a number`);
          parameter.value = value === null ? 0n : value.pointer;
        } else {
          if (typeof value !== 'number') throw new Error(`${entry.symbol}: ${p.name} is a ${p.type}, given a buffer`);
          parameter.value = value;
        }
      }
      // The grid reads its sizes by name from the arguments (the u32 ones, checked above).
      const grid = op === 'attention' ? attentionGrid(manifest, entry.name, args['batch'] as number, args['seqLen'] as number) : modelOpGrid(manifest, entry.name, args);
      driver.launch(resolved.function, grid, entry.block as Dim3, entry.sharedBytes, parameters);
      launches++;
    },
    launches: () => launches,
  };
}
