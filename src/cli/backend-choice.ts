// `--backend` of the commands that run the model: the cpu backend (native addon, or the
// TypeScript ops with a notice) or the webgpu one. Loaded on demand: the webgpu backend loads
// Dawn, which a cpu run never needs.
import type { TrainingOps } from '../train/ops/training-ops.ts';
import { UsageError } from './usage.ts';

export const BACKENDS = ['cpu', 'webgpu', 'cuda'] as const;

export interface ChosenBackend {
  readonly ops: TrainingOps;
  close(): void;
}

/** The backend's ops, having told the user on stderr what runs; null (and the reason printed) when it cannot run here. */
export async function chooseBackend(backend: string, command: string): Promise<ChosenBackend | null> {
  if (!(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`unknown backend '${backend}': expected ${BACKENDS.join(', ')}`, command);
  if (backend === 'cpu') {
    const { cpuBackend } = await import('../runtime/cpu/backend.ts');
    const cpu = cpuBackend();
    if (cpu.notice) process.stderr.write(`${cpu.notice}\n`);
    return { ops: cpu.ops, close: () => {} };
  }
  if (backend === 'webgpu') {
    const { webGpuBackend } = await import('../runtime/webgpu/backend.ts');
    try {
      const gpu = await webGpuBackend();
      process.stderr.write(`webgpu backend on ${gpu.description}\n`);
      return gpu;
    } catch (e) {
      process.stderr.write(`qalc ${command}: the webgpu backend cannot start: ${(e as Error).message}\n`);
      return null;
    }
  }
  process.stderr.write(`qalc ${command}: the ${backend} backend is not available yet (it runs the generated kernels, which are still being built); use --backend cpu or webgpu\n`);
  return null;
}
