// What every backend is to its callers (qalc train and eval, the generated trainer, benchmarks):
// a name, the op table, a line to show before the run, one after it, and close(). Backends load
// on demand, so a cpu run never loads Dawn or the CUDA driver binding.
//   cpu     the native addon, or the TypeScript ops with a notice when it is not built
//   webgpu  every op as a WGSL kernel through Dawn (a GPU's Vulkan driver, or Mesa lavapipe),
//           the quantized linear layers on the spec's compiled kernels
//   cuda    every op on the GPU: the spec's compiled linear and model-op kernels (cuda/backend.ts)
// A backend that cannot run here throws BackendUnavailableError with the reason, which callers
// print as one line (exit status 1); an unknown name throws UnknownBackendError.
import type { Plan } from '../plan/plan.ts';
import type { TrainingOps } from './ops.ts';

export const BACKENDS = ['cpu', 'webgpu', 'cuda'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface Backend {
  readonly name: BackendName;
  readonly ops: TrainingOps;
  /** Lines to show before the run ('' for none). */
  readonly notice: string;
  /** Lines to show after it: what ran where ('' for none). */
  report(): string;
  /** Frees the device; the ops must not be used after. */
  close(): void;
}

export interface BackendOptions {
  /** cuda: the compiled kernels (default generated/<spec>/cuda). */
  readonly kernelDir?: string;
}

export class UnknownBackendError extends Error {
  override readonly name = 'UnknownBackendError';
  constructor(readonly backend: string) {
    super(`unknown backend '${backend}': expected ${BACKENDS.join(', ')}`);
  }
}

export class BackendUnavailableError extends Error {
  override readonly name = 'BackendUnavailableError';
  constructor(readonly backend: BackendName, readonly reason: string) {
    super(`the ${backend} backend cannot run here: ${reason}`);
  }
}

export function isBackendName(name: string): name is BackendName {
  return (BACKENDS as readonly string[]).includes(name);
}

/** The backend a run asks for: `--backend`, else the spec's train.backend, else cpu. */
export function requestedBackend(plan: Plan, flag: string | undefined): string {
  return flag ?? String(plan.train?.backend ?? 'cpu');
}

async function open(name: BackendName, plan: Plan, options: BackendOptions): Promise<Backend> {
  switch (name) {
    case 'webgpu': {
      const { webGpuBackend } = await import('./webgpu/backend.ts');
      return webGpuBackend(plan);
    }
    case 'cuda': {
      const { cudaBackend } = await import('./cuda/backend.ts');
      return cudaBackend(plan, options);
    }
    case 'cpu': {
      const { cpuBackend } = await import('./cpu/backend.ts');
      return cpuBackend();
    }
  }
}

/** The named backend, opened for the plan. Throws UnknownBackendError or BackendUnavailableError. */
export async function chooseBackend(name: string, plan: Plan, options: BackendOptions = {}): Promise<Backend> {
  if (!isBackendName(name)) throw new UnknownBackendError(name);
  try {
    return await open(name, plan, options);
  } catch (e) {
    // A backend says why it cannot run with an error of its own (no GPU, no adapter, no fatbins);
    // the language's own errors are bugs in qalc and stay what they are.
    const bug = e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError || e instanceof SyntaxError;
    if (!(e instanceof Error) || bug || e instanceof BackendUnavailableError) throw e;
    throw new BackendUnavailableError(name, e.message);
  }
}
