// The cuda backend as a TrainingOps table: the quantized QA-LoRA linear layers run the kernels
// `qalc compile` emitted for the spec, on the GPU, through the cuda device port (cuda-port.ts)
// and the runtime's one compiled-linear layer (../compiled-linear.ts); every other op (norms,
// RoPE, attention, SwiGLU, lm_head, cross-entropy) is the fallback table's — the native CPU ops —
// for now. Per linear call the inputs go up, and the outputs come back once the GPU is done.
import { compiledLinearOps, describeCompiledLinearStats, type CompiledLinearStats } from '../compiled-linear.ts';
import type { TrainingOps } from '../ops.ts';
import type { CudaDevicePort } from './cuda.ts';
import { CUDA_WORDING, cudaPort } from './cuda-port.ts';
import type { CudaKernelSet } from './kernels.ts';

export interface CudaOps extends TrainingOps {
  readonly stats: CompiledLinearStats;
  /** Kernel launches so far (for reports). */
  readonly launches: () => number;
}

export function cudaOps(driver: CudaDevicePort, kernels: Pick<CudaKernelSet, 'kernels'>, fallback: TrainingOps): CudaOps {
  const port = cudaPort(driver, kernels.kernels);
  const linear = compiledLinearOps(port, fallback);
  return { ...fallback, name: `cuda+${fallback.name}`, ...linear, launches: port.launches };
}

/** One line: what ran where. */
export function describeStats(stats: CompiledLinearStats): string {
  return describeCompiledLinearStats(stats, CUDA_WORDING);
}
