// Whether Dawn finds a WebGPU adapter on this machine, for the tests that need one. On a machine
// without a GPU that takes a Vulkan driver (Mesa lavapipe >= 25; .ci/run installs it). Outside
// CI those tests are skipped, loudly, with the line that installs it; in CI (CI set) they run
// and fail, as the browser test does without Chromium.
import { create } from 'webgpu';

/** Kept for the process's lifetime: Dawn must not free an instance (see src/runtime/webgpu/device.ts). */
const probes: GPU[] = [];

async function adapterFound(): Promise<boolean> {
  const gpu = create([]);
  probes.push(gpu);
  return (await gpu.requestAdapter()) !== null;
}

export const INSTALL_VULKAN_DRIVER =
  'no Vulkan driver for WebGPU: on Debian 12 `apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1` ' +
  '(bookworm-backports enabled; .ci/run does this in CI)';

/** True where the WebGPU tests are skipped: no adapter, and not in CI. */
export const skipWebGpu = !(await adapterFound()) && !process.env.CI;

/** A test or suite name that says it was skipped and why. */
export function webGpuName(name: string): string {
  return skipWebGpu ? `${name} (SKIPPED: ${INSTALL_VULKAN_DRIVER})` : name;
}

// The support module is loaded once per test file, so every file that needs WebGPU says it.
if (skipWebGpu) console.warn(`\n*** SKIPPING the WebGPU tests of this file: ${INSTALL_VULKAN_DRIVER}. In CI (CI set) this is a failure. ***\n`);
