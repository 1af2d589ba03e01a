// Launching a spec's compiled linear kernels as their manifest says, shared by both cuda device
// ports (cuda-port.ts copies results back after each call, resident-port.ts leaves them on the
// device): one module per kernel's fatbin, and per dispatch every launch the token count
// selects — a launch's prologue (the forward's u/v kernel) first — with the buffers in binding
// order, then T and adapterScale.
import { dispatchFor, launchesFor, type CudaManifestKernel, type ManifestKernel } from '../../backends/manifest.ts';
import { evaluateDispatch } from '../../ir/size-expr.ts';
import { f32, pointer, u32, type CudaDevicePort, type CudaFunction, type DeviceBuffer } from './cuda.ts';
import type { CudaKernelImage } from './kernels.ts';

export interface LoadedKernels {
  /** Queues every launch of `kernel` for T = `tokens`; returns how many it queued. */
  dispatch(kernel: ManifestKernel, tokens: number, buffers: Readonly<Record<string, DeviceBuffer>>, scalars: { readonly tokens: number; readonly adapterScale: number }): number;
}

export function loadManifestKernels(driver: CudaDevicePort, images: readonly CudaKernelImage[]): LoadedKernels {
  const loaded = new Map(images.map(({ manifest, fatbin }) => {
    const module = driver.loadModule(fatbin);
    const symbols = manifest.launches.flatMap((l) => (l.prologue ? [l.prologue.symbol, l.symbol] : [l.symbol]));
    return [manifest.kernel, { manifest, functions: new Map(symbols.map((symbol) => [symbol, module.function(symbol)])) }];
  }));
  return {
    dispatch(kernel, tokens, buffers, scalars) {
      const found = loaded.get(kernel.kernel);
      if (found === undefined) throw new Error(`kernel ${kernel.kernel} is not one of this port's`);
      const manifest: CudaManifestKernel = found.manifest;
      const parameters = manifest.bindings.filter((b) => b.elementType !== 'params').sort((a, b) => a.binding - b.binding).map((b) => {
        const buffer = buffers[b.name];
        if (buffer === undefined) throw new Error(`kernel ${manifest.kernel}: no buffer for binding ${b.name}`);
        return pointer(buffer);
      });
      const chosen = launchesFor(manifest, tokens);
      if (chosen === undefined) throw new Error(`kernel ${manifest.kernel} has no launch for T = ${tokens}`);
      const args = [...parameters, u32(scalars.tokens), f32(scalars.adapterScale)];
      let launches = 0;
      for (const launch of chosen) {
        if (launch.prologue) {
          driver.launch(found.functions.get(launch.prologue.symbol) as CudaFunction, launch.prologue.dispatch.map((d) => evaluateDispatch(d, tokens)) as [number, number, number], launch.prologue.workgroup, 0, args);
          launches++;
        }
        driver.launch(found.functions.get(launch.symbol) as CudaFunction, dispatchFor(launch, tokens), launch.workgroup, 0, args);
        launches++;
      }
      return launches;
    },
  };
}
