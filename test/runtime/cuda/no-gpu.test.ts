// The cuda backend on a machine without a GPU (CI, and this project's build machine): the
// driver binding loads, says plainly why there is no GPU, and `--backend cuda` stops with that
// reason instead of a crash. On a GPU machine these assertions are skipped.
import { existsSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { chooseBackend } from '../../../src/cli/backend-choice.ts';
import { frontEnd } from '../../../src/compile.ts';
import { CUDA_ADDON_PATH, CudaUnavailableError, cudaAvailability, cudaDriver } from '../../../src/runtime/cuda/cuda.ts';

const availability = cudaAvailability();

describe.skipIf(availability.available)('cuda without a GPU', () => {
  it('reports why: no libcuda.so.1 (or the binding is not built)', () => {
    expect(availability.available).toBe(false);
    const reason = (availability as { reason: string }).reason;
    if (existsSync(CUDA_ADDON_PATH)) expect(reason).toMatch(/^no GPU: libcuda\.so\.1 not found/);
    else expect(reason).toMatch(/not built.*node-gyp rebuild/);
  });

  it('cudaDriver() throws CudaUnavailableError with the same reason, every time', () => {
    for (let i = 0; i < 2; i++) {
      expect(() => cudaDriver()).toThrow(CudaUnavailableError);
      expect(() => cudaDriver()).toThrow((availability as { reason: string }).reason);
    }
  });

  it('--backend cuda answers exit status 1 and the reason', async () => {
    const { plan } = frontEnd('examples/stories260k.qal');
    if (plan === undefined) return; // the example's model files are not here
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await chooseBackend('cuda', plan, 'train')).toBe(1);
      expect(String(stderr.mock.calls[0]?.[0])).toMatch(/qalc train: the cuda backend cannot run here: (no GPU: libcuda\.so\.1 not found|the CUDA driver binding is not built)/);
    } finally {
      stderr.mockRestore();
    }
  });
});
