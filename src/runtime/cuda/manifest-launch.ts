// Launching a spec's compiled linear kernels as their manifest says, shared by both cuda device
// ports (cuda-port.ts copies results back after each call, resident-port.ts leaves them on the
// device): one module per kernel's fatbin, and per dispatch every launch the token count
// selects — a launch's prologue (the forward's u/v kernel) first — with the buffers in binding
// order, then T and adapterScale.
import { dispatchFor, launchesFor, type CudaManifestKernel, type ManifestKernel, type ManifestLaunch } from '../../backends/manifest.ts';
import { evaluateDispatch } from '../../ir/size-expr.ts';
import { f32, pointer, u32, type CudaDevicePort, type CudaFunction, type DeviceBuffer, type KernelParameter } from './cuda.ts';
import type { CudaKernelImage } from './kernels.ts';

type Scalars = { readonly tokens: number; readonly adapterScale: number };

export interface LoadedKernels {
  /** Queues every launch of `kernel` for T = `tokens`; returns how many it queued. */
  dispatch(kernel: ManifestKernel, tokens: number, buffers: Readonly<Record<string, DeviceBuffer>>, scalars: Scalars): number;
  /**
   * Queues only the prologue of `kernel` (the forward's u/v kernel, which serves any T): u and v
   * without y, for a caller that computes y otherwise (gemm-linear.ts). Throws when it has none.
   */
  prologue(kernel: ManifestKernel, tokens: number, buffers: Readonly<Record<string, DeviceBuffer>>, scalars: Scalars): void;
  /**
   * Queues only the launches of entry point `entryPoint` that T = `tokens` selects (adapter_grad's
   * adapterInputGrads, when cuBLAS computes its adapterOutputGrads); returns how many. Throws when
   * there are none.
   */
  entry(kernel: ManifestKernel, entryPoint: string, tokens: number, buffers: Readonly<Record<string, DeviceBuffer>>, scalars: Scalars): number;
}

/** The u/v prologue among `kernel`'s launches, if it has one. */
export function prologueOf(kernel: Pick<ManifestKernel, 'launches'>): NonNullable<ManifestLaunch['prologue']> | undefined {
  return kernel.launches.find((l) => l.prologue !== undefined)?.prologue;
}

export function loadManifestKernels(driver: CudaDevicePort, images: readonly CudaKernelImage[]): LoadedKernels {
  const loaded = new Map(images.map(({ manifest, fatbin }) => {
    const module = driver.loadModule(fatbin);
    const symbols = manifest.launches.flatMap((l) => (l.prologue ? [l.prologue.symbol, l.symbol] : [l.symbol]));
    return [manifest.kernel, { manifest, functions: new Map(symbols.map((symbol) => [symbol, module.function(symbol)])) }];
  }));
  const loadedOf = (kernel: ManifestKernel) => {
    const found = loaded.get(kernel.kernel);
    if (found === undefined) throw new Error(`kernel ${kernel.kernel} is not one of this port's`);
    return found;
  };
  /** The pointers in binding order, then T and adapterScale: every launch of a kernel takes these. */
  const argumentsOf = (manifest: CudaManifestKernel, buffers: Readonly<Record<string, DeviceBuffer>>, scalars: Scalars) => {
    const parameters = manifest.bindings.filter((b) => b.elementType !== 'params').sort((a, b) => a.binding - b.binding).map((b) => {
      const buffer = buffers[b.name];
      if (buffer === undefined) throw new Error(`kernel ${manifest.kernel}: no buffer for binding ${b.name}`);
      return pointer(buffer);
    });
    return [...parameters, u32(scalars.tokens), f32(scalars.adapterScale)];
  };
  type Loaded = ReturnType<typeof loadedOf>;
  const launchPrologue = (found: Loaded, prologue: NonNullable<ManifestLaunch['prologue']>, tokens: number, args: KernelParameter[]) =>
    driver.launch(found.functions.get(prologue.symbol) as CudaFunction, prologue.dispatch.map((d) => evaluateDispatch(d, tokens)) as [number, number, number], prologue.workgroup, 0, args);
  return {
    dispatch(kernel, tokens, buffers, scalars) {
      const found = loadedOf(kernel);
      const manifest: CudaManifestKernel = found.manifest;
      const chosen = launchesFor(manifest, tokens);
      if (chosen === undefined) throw new Error(`kernel ${manifest.kernel} has no launch for T = ${tokens}`);
      const args = argumentsOf(manifest, buffers, scalars);
      let launches = 0;
      for (const launch of chosen) {
        if (launch.prologue) {
          launchPrologue(found, launch.prologue, tokens, args);
          launches++;
        }
        driver.launch(found.functions.get(launch.symbol) as CudaFunction, dispatchFor(launch, tokens), launch.workgroup, 0, args);
        launches++;
      }
      return launches;
    },
    entry(kernel, entryPoint, tokens, buffers, scalars) {
      const found = loadedOf(kernel);
      const chosen = launchesFor(found.manifest, tokens)?.filter((l) => l.entryPoint === entryPoint) ?? [];
      if (chosen.length === 0) throw new Error(`kernel ${kernel.kernel} has no launch of ${entryPoint} for T = ${tokens}`);
      const args = argumentsOf(found.manifest, buffers, scalars);
      for (const launch of chosen) driver.launch(found.functions.get(launch.symbol) as CudaFunction, dispatchFor(launch, tokens), launch.workgroup, 0, args);
      return chosen.length;
    },
    prologue(kernel, tokens, buffers, scalars) {
      const found = loadedOf(kernel);
      const prologue = prologueOf(found.manifest);
      if (prologue === undefined) throw new Error(`kernel ${kernel.kernel} has no prologue`);
      launchPrologue(found, prologue, tokens, argumentsOf(found.manifest, buffers, scalars));
    },
  };
}
