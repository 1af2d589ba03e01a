// Fusion passes: work that rides along with the quantized matmuls instead of running as
// kernels of its own.
import type { Epilogue, KernelIR, KernelProgram, PoolingFusion } from '../kernel-ir.ts';
import { configOfKernel } from './share-layers.ts';

const readsInputTiles = (kernel: KernelIR) => kernel.role === 'forward' || kernel.role === 'decode';

/**
 * Pass 7: u = pool(x) is summed from the x values the matmul already loaded, chunk by chunk;
 * x is read from memory once for both x·Ŵ and the adapter.
 */
export function fusePoolingIntoInputLoad(program: KernelProgram): KernelProgram {
  return {
    ...program,
    kernels: program.kernels.map((kernel) => {
      const c = configOfKernel(program, kernel);
      const pooling: PoolingFusion | null =
        readsInputTiles(kernel) && c.adapter
          ? { group: c.group, groups: c.groups, factor: c.adapter.poolingFactor, saves: 'pooledInput' }
          : null;
      return { ...kernel, pooling };
    }),
  };
}

/**
 * Pass 8: the adapter in the matmul's epilogue. Forward and decode add σ·v·B to each output
 * tile, with v = drop(u)·A accumulated as each group's pooled sum completes; backward_data adds
 * unpool(du) to each dx tile. The separate adapter products (dA, dB, dv, du) stay in
 * adapter_grad: they reduce over tokens, which no output tile of the matmul owns.
 */
export function fuseAdapterEpilogue(program: KernelProgram): KernelProgram {
  return {
    ...program,
    kernels: program.kernels.map((kernel) => {
      const c = configOfKernel(program, kernel);
      let epilogue: Epilogue = { kind: 'none' };
      if (c.adapter && readsInputTiles(kernel)) {
        epilogue = { kind: 'adapter', rank: c.adapter.rank, dropout: c.adapter.dropout, saves: 'adapterActivation' };
      } else if (c.adapter && kernel.role === 'backward_data') {
        epilogue = { kind: 'unpool', factor: c.adapter.poolingFactor, group: c.group };
      }
      return { ...kernel, epilogue };
    }),
  };
}
