// The cuda backend on a machine without a GPU (CI, and this project's build machine): the
// driver binding loads, says plainly why there is no GPU, and `--backend cuda` stops with that
// reason instead of a crash (train's and generate's). On a GPU machine these assertions are skipped.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, chooseBackend } from '../../../src/runtime/backend.ts';
import { CUDA_ADDON_PATH, CudaUnavailableError, cublasAvailability, cudaAvailability, cudaDriver } from '../../../src/runtime/cuda/cuda.ts';
import { compileSpec } from '../../support/inline-spec.ts';

const availability = cudaAvailability();

describe.skipIf(availability.available)('cuda without a GPU', () => {
  it('reports why: no libcuda.so.1 (or the binding is not built)', () => {
    const reason = (availability as { reason: string }).reason;
    if (existsSync(CUDA_ADDON_PATH)) expect(reason).toMatch(/^no GPU: libcuda\.so\.1 not found/);
    else expect(reason).toMatch(/not built.*node-gyp rebuild/);
  });

  it.skipIf(!existsSync(CUDA_ADDON_PATH))('the binding has cuBLAS\'s GEMM, which says why it cannot run here; probing for libcublas needs no GPU', () => {
    const addon = createRequire(import.meta.url)(CUDA_ADDON_PATH) as { gemm: (...args: unknown[]) => void };
    expect(typeof addon.gemm).toBe('function');
    expect(() => addon.gemm(false, true, 1, 1, 1, 1, 0x1000n, 1, 0x1000n, 1, 0, 0x1000n, 1, 'bf16', 'f32')).toThrow(/^no GPU: libcuda\.so\.1 not found/);
    const blas = cublasAvailability();
    if (blas.available) expect(blas.library).toMatch(/libcublas\.so/);
    else expect(blas.reason).toMatch(/^no cuBLAS: libcublas\.so\.13 not found \(tried the loader's path and \/usr\/local\/cuda\/lib64; dlopen: .*libcublas/);
  });

  it.skipIf(!existsSync(CUDA_ADDON_PATH))('the binding has CUDA graphs (capture, launch, destroy), which say why they cannot run here', () => {
    type Graphs = Record<'graphProbe' | 'beginCapture' | 'endCapture' | 'abortCapture' | 'graphLaunch' | 'graphDestroy', (...args: unknown[]) => unknown>;
    const addon = createRequire(import.meta.url)(CUDA_ADDON_PATH) as Graphs;
    expect(addon.graphProbe()).toEqual({ available: false, reason: expect.stringMatching(/^no GPU: libcuda\.so\.1 not found/) });
    for (const call of [() => addon.beginCapture(), () => addon.endCapture(), () => addon.abortCapture(), () => addon.graphLaunch(0), () => addon.graphDestroy(0)]) {
      expect(call).toThrow(/^no GPU: libcuda\.so\.1 not found/);
    }
  });

  it('cudaDriver() throws CudaUnavailableError with the same reason, every time', () => {
    for (let i = 0; i < 2; i++) {
      expect(() => cudaDriver()).toThrow(CudaUnavailableError);
      expect(() => cudaDriver()).toThrow((availability as { reason: string }).reason);
    }
  });

  it('--backend cuda is refused with the reason, as an input error (exit status 1)', async () => {
    // A preset spec: no model files are needed to get as far as the driver.
    const { plan } = compileSpec('quant {\n  bits = 4\n  group = 32\n}\nadapter {\n  kind = qalora\n  rank = 4\n}\n');
    expect(plan).toBeDefined();
    const refusal = await chooseBackend('cuda', plan!).then(() => null, (e: unknown) => e);
    expect(refusal).toBeInstanceOf(BackendUnavailableError);
    expect((refusal as Error).message).toMatch(/^the cuda backend cannot run here: (no GPU: libcuda\.so\.1 not found|the CUDA driver binding is not built)/);
  });

  it('qalc generate --backend cuda is refused with the reason, exit status 1, nothing on stdout', () => {
    const r = spawnSync(process.execPath, ['src/cli/qalc.mjs', 'generate', 'examples/stories260k.qal', '--backend', 'cuda', '--steps', '4'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^qalc generate: the cuda backend cannot run here: (no GPU: libcuda\.so\.1 not found|the CUDA driver binding is not built)/);
  });
});
