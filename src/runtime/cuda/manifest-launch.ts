// Launching a spec's compiled linear kernels as their manifest says, shared by both cuda device
// ports (cuda-port.ts copies results back after each call, resident-port.ts leaves them on the
// device): one module per kernel's fatbin, and per dispatch every launch the token count
// selects — a launch's prologue (the forward's u/v kernel) first — with the buffers in binding
// order, then T and adapterScale. What a (kernel, T) launches — the functions, grids and blocks —
// is resolved on its first dispatch and kept: a training step dispatches the same few kernels at
// one T hundreds of times.
import { dispatchFor, launchesFor, type CudaManifestKernel, type ManifestKernel, type ManifestLaunch } from '../../backends/manifest.ts';
import { evaluateDispatch } from '../../ir/size-expr.ts';
import { reusedParameter, type CudaDevicePort, type CudaFunction, type DeviceBuffer, type Dim3, type KernelParameter, type ReusedParameter } from './cuda.ts';
import type { CudaKernelImage } from './kernels.ts';

type Scalars = { readonly tokens: number; readonly adapterScale: number };

/** The buffers of a dispatch by binding name, as the port holds them, and how to get each one's device buffer. */
export type BufferOf<T> = (tensor: T) => DeviceBuffer;

export interface LoadedKernels {
  /** Queues every launch of `kernel` for T = `tokens`; returns how many it queued. */
  dispatch<T>(kernel: ManifestKernel, tokens: number, buffers: Readonly<Record<string, T>>, bufferOf: BufferOf<T>, scalars: Scalars): number;
  /**
   * Queues only the prologue of `kernel` (the forward's u/v kernel, which serves any T): u and v
   * without y, for a caller that computes y otherwise (gemm-linear.ts). Throws when it has none.
   */
  prologue<T>(kernel: ManifestKernel, tokens: number, buffers: Readonly<Record<string, T>>, bufferOf: BufferOf<T>, scalars: Scalars): void;
  /**
   * Queues only the launches of entry point `entryPoint` that T = `tokens` selects (adapter_grad's
   * adapterInputGrads, when cuBLAS computes its adapterOutputGrads); returns how many. Throws when
   * there are none.
   */
  entry<T>(kernel: ManifestKernel, entryPoint: string, tokens: number, buffers: Readonly<Record<string, T>>, bufferOf: BufferOf<T>, scalars: Scalars): number;
}

/** The u/v prologue among `kernel`'s launches, if it has one. */
export function prologueOf(kernel: Pick<ManifestKernel, 'launches'>): NonNullable<ManifestLaunch['prologue']> | undefined {
  return kernel.launches.find((l) => l.prologue !== undefined)?.prologue;
}

/** One kernel launch with its grid for a T. */
interface ResolvedLaunch {
  readonly function: CudaFunction;
  readonly grid: Dim3;
  readonly block: Dim3;
}

/** A loaded kernel: its functions, its buffers' names in parameter order, and per T what a dispatch launches. */
interface LoadedKernel {
  readonly manifest: CudaManifestKernel;
  readonly functions: ReadonlyMap<string, CudaFunction>;
  readonly bindingOrder: readonly string[];
  /** The launches' parameters (the pointers in binding order, then T and adapterScale), set again by every dispatch. */
  readonly parameters: readonly ReusedParameter[];
  /** Per T: each launch, its prologue first (undefined: no launch serves that T). */
  readonly launchesByTokens: Map<number, readonly ResolvedLaunch[] | undefined>;
  readonly prologueByTokens: Map<number, ResolvedLaunch>;
  /** Per entry point and T: its launches alone, without prologues (entry()). */
  readonly entryByTokens: Map<string, Map<number, readonly ResolvedLaunch[]>>;
}

function resolvedLaunches(kernel: LoadedKernel, tokens: number): readonly ResolvedLaunch[] | undefined {
  if (kernel.launchesByTokens.has(tokens)) return kernel.launchesByTokens.get(tokens);
  const chosen = launchesFor(kernel.manifest, tokens)?.flatMap((launch) => [
    ...(launch.prologue ? [resolvedPrologue(kernel, launch.prologue, tokens)] : []),
    { function: kernel.functions.get(launch.symbol)!, grid: dispatchFor(launch, tokens), block: launch.workgroup },
  ]);
  kernel.launchesByTokens.set(tokens, chosen);
  return chosen;
}

function resolvedEntry(kernel: LoadedKernel, entryPoint: string, tokens: number): readonly ResolvedLaunch[] {
  let byTokens = kernel.entryByTokens.get(entryPoint);
  if (byTokens === undefined) kernel.entryByTokens.set(entryPoint, (byTokens = new Map()));
  let chosen = byTokens.get(tokens);
  if (chosen === undefined) {
    chosen = (launchesFor(kernel.manifest, tokens) ?? []).filter((l) => l.entryPoint === entryPoint)
      .map((launch) => ({ function: kernel.functions.get(launch.symbol)!, grid: dispatchFor(launch, tokens), block: launch.workgroup }));
    byTokens.set(tokens, chosen);
  }
  return chosen;
}

function resolvedPrologue(kernel: LoadedKernel, prologue: NonNullable<ManifestLaunch['prologue']>, tokens: number): ResolvedLaunch {
  return { function: kernel.functions.get(prologue.symbol)!, grid: prologue.dispatch.map((d) => evaluateDispatch(d, tokens)) as unknown as Dim3, block: prologue.workgroup };
}

export function loadManifestKernels(driver: CudaDevicePort, images: readonly CudaKernelImage[]): LoadedKernels {
  const loaded = new Map<string, LoadedKernel>(images.map(({ manifest, fatbin }) => {
    const module = driver.loadModule(fatbin);
    const symbols = manifest.launches.flatMap((l) => (l.prologue ? [l.prologue.symbol, l.symbol] : [l.symbol]));
    const bindingOrder = manifest.bindings.filter((b) => b.elementType !== 'params').sort((a, b) => a.binding - b.binding).map((b) => b.name);
    return [manifest.kernel, {
      manifest, functions: new Map(symbols.map((symbol) => [symbol, module.function(symbol)])), bindingOrder, launchesByTokens: new Map(), prologueByTokens: new Map(), entryByTokens: new Map(),
      parameters: [...bindingOrder.map(() => reusedParameter('pointer')), reusedParameter('u32'), reusedParameter('f32')],
    }];
  }));
  const loadedOf = (kernel: ManifestKernel) => {
    const found = loaded.get(kernel.kernel);
    if (found === undefined) throw new Error(`kernel ${kernel.kernel} is not one of this port's`);
    return found;
  };
  /** The pointers in binding order, then T and adapterScale: every launch of a kernel takes these. */
  const argumentsOf = <T>(kernel: LoadedKernel, buffers: Readonly<Record<string, T>>, bufferOf: BufferOf<T>, scalars: Scalars): readonly KernelParameter[] => {
    const { bindingOrder, parameters } = kernel;
    for (let i = 0; i < bindingOrder.length; i++) {
      const tensor = buffers[bindingOrder[i]!];
      if (tensor === undefined) throw new Error(`kernel ${kernel.manifest.kernel}: no buffer for binding ${bindingOrder[i]}`);
      parameters[i]!.value = bufferOf(tensor).pointer;
    }
    parameters[bindingOrder.length]!.value = scalars.tokens;
    parameters[bindingOrder.length + 1]!.value = scalars.adapterScale;
    return parameters;
  };
  const launch = (l: ResolvedLaunch, args: readonly KernelParameter[]) => driver.launch(l.function, l.grid, l.block, 0, args);
  return {
    dispatch(kernel, tokens, buffers, bufferOf, scalars) {
      const found = loadedOf(kernel);
      const chosen = resolvedLaunches(found, tokens);
      if (chosen === undefined) throw new Error(`kernel ${kernel.kernel} has no launch for T = ${tokens}`);
      const args = argumentsOf(found, buffers, bufferOf, scalars);
      for (const l of chosen) launch(l, args);
      return chosen.length;
    },
    entry(kernel, entryPoint, tokens, buffers, bufferOf, scalars) {
      const found = loadedOf(kernel);
      const chosen = resolvedEntry(found, entryPoint, tokens);
      if (chosen.length === 0) throw new Error(`kernel ${kernel.kernel} has no launch of ${entryPoint} for T = ${tokens}`);
      const args = argumentsOf(found, buffers, bufferOf, scalars);
      for (const l of chosen) launch(l, args);
      return chosen.length;
    },
    prologue(kernel, tokens, buffers, bufferOf, scalars) {
      const found = loadedOf(kernel);
      let resolved = found.prologueByTokens.get(tokens);
      if (resolved === undefined) {
        const prologue = prologueOf(found.manifest);
        if (prologue === undefined) throw new Error(`kernel ${kernel.kernel} has no prologue`);
        found.prologueByTokens.set(tokens, (resolved = resolvedPrologue(found, prologue, tokens)));
      }
      launch(resolved, argumentsOf(found, buffers, bufferOf, scalars));
    },
  };
}
