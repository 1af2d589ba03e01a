import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';

const webgpuTests = 'test/**/*.webgpu.test.ts';

// The config lives under test/ to keep the top level to the project's own folders;
// the root is the repository so paths in tests read from there.
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    testTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, webgpuTests],
        },
      },
      {
        // dawn.node was seen crashing at random once TurboFan optimised JS while a GPU wait was
        // pending, so WebGPU tests run in child processes with V8's optimising tiers capped.
        // (The crash reproduced here was V8 collecting the Dawn instance, which
        // src/runtime/webgpu/device.ts now keeps alive.) Keep heavy JS out of these files:
        // under --max-opt=2 it runs ~20x slower.
        extends: true,
        test: {
          name: 'webgpu',
          include: [webgpuTests],
          pool: 'forks',
          execArgv: ['--max-opt=2'],
        },
      },
    ],
  },
});
