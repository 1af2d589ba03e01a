import { expect, it } from 'vitest';
import { frontEnd } from '../../../src/compile.ts';
import { emitKernels } from '../../../src/backends/emit-kernels.ts';
import { chooseWgslPrecision, kernelNameFor } from '../../../src/runtime/webgpu/precision.ts';

const adapterInfo = { vendor: 'nvidia', architecture: '', device: '', description: 'NVIDIA 580.159', isFallbackAdapter: false, subgroupMinSize: 32, subgroupMaxSize: 32 };

it('falls back to the f32 kernels, and says so, where the adapter has no shader-f16', () => {
  expect(chooseWgslPrecision({ hasF16: true, adapterInfo }, 'f16')).toEqual({ precision: 'f16', notice: '' });
  expect(chooseWgslPrecision({ hasF16: false, adapterInfo }, 'f16')).toEqual({
    precision: 'f32', notice: 'NVIDIA 580.159 does not offer shader-f16: running the f32 WGSL kernels instead of f16',
  });
  expect(chooseWgslPrecision({ hasF16: false, adapterInfo }, 'f32').notice).toBe('');
});

it('a spec asking for WGSL f16 gets every kernel in f32 as well', () => {
  const { plan } = frontEnd('examples/llama-7b-int4-g32.qal');
  const names = emitKernels(plan!).wgsl.map((k) => k.kernel.name);
  const f16 = names.filter((n) => n.endsWith('_f16'));
  expect(f16.length).toBeGreaterThan(0);
  for (const name of f16) expect(names).toContain(kernelNameFor(name, 'f32'));
});
