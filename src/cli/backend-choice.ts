// `--backend` of the commands that run the model (train, eval): the ops to compute with, loaded
// on demand so a cpu run never loads Dawn or the CUDA driver binding.
//   cpu     the native addon, or the TypeScript ops with a notice when it is not built
//   webgpu  every op as a WGSL kernel through Dawn (a GPU's Vulkan driver, or Mesa lavapipe),
//           the quantized linear layers on the spec's compiled kernels
//   cuda    the quantized linear layers through the spec's compiled kernels, the rest on the CPU
// A backend that cannot run here is not an error with a stack: the reason goes to stderr and
// the command exits with status 1.
import type { Plan } from '../plan/plan.ts';
import type { TrainingOps } from '../train/ops/training-ops.ts';
import { UsageError } from './usage.ts';

export const BACKENDS = ['cpu', 'webgpu', 'cuda'] as const;

export interface ChosenBackend {
  readonly ops: TrainingOps;
  /** Lines to show before the run ('' for none). */
  readonly notice: string;
  /** Lines to show after it: what ran where ('' for none). */
  report(): string;
}

export interface BackendOptions {
  /** cuda: the compiled kernels (default generated/<spec>/cuda). */
  readonly kernelDir?: string;
}

/** The chosen backend, or 1 after saying on stderr why it cannot run here. */
export async function chooseBackend(backend: string, plan: Plan, command: string, options: BackendOptions = {}): Promise<ChosenBackend | number> {
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`unknown backend '${backend}': expected ${BACKENDS.join(', ')}`, command);
  try {
    switch (backend) {
      case 'webgpu': {
        const { webGpuBackend } = await import('../runtime/webgpu/backend.ts');
        const gpu = await webGpuBackend(plan);
        return { ops: gpu.ops, notice: gpu.notice, report: () => gpu.report() };
      }
      case 'cuda': {
        const { cudaBackend } = await import('../runtime/cuda/backend.ts');
        const { describeStats } = await import('../runtime/cuda/cuda-ops.ts');
        const cuda = await cudaBackend(plan, options);
        return { ops: cuda.ops, notice: cuda.notice, report: () => describeStats(cuda.ops.stats) };
      }
      default: {
        const { cpuBackend } = await import('../runtime/cpu/backend.ts');
        const cpu = cpuBackend();
        return { ops: cpu.ops, notice: cpu.notice, report: () => '' };
      }
    }
  } catch (e) {
    if (!(e instanceof Error) || e instanceof UsageError) throw e;
    process.stderr.write(`qalc ${command}: the ${backend} backend cannot run here: ${e.message}\n`);
    return 1;
  }
}
