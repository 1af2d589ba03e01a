// Whether Dawn finds a WebGPU adapter on this machine, for the tests that need one. On a machine
// without a GPU that takes a Vulkan driver (Mesa lavapipe >= 25; .ci/run installs it). Outside
// CI those tests are skipped, loudly, with the line that installs it; in CI (CI set) they run
// and fail, as the browser test does without Chromium.

/** Kept for the process's lifetime: Dawn must not free an instance (see src/runtime/webgpu/device.ts). */
const probes: GPU[] = [];

const INSTALL_DAWN = 'the optional package webgpu (Dawn) is not installed: `npm install webgpu`';
const INSTALL_VULKAN_DRIVER =
  'no Vulkan driver for WebGPU: on Debian 12 `apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1` ' +
  '(bookworm-backports enabled; .ci/run does this in CI)';

/** What keeps Dawn from giving an adapter here, with the line that installs it; '' when nothing does. */
async function missingForWebGpu(): Promise<string> {
  let dawn: typeof import('webgpu');
  try {
    dawn = await import('webgpu');
  } catch {
    return INSTALL_DAWN;
  }
  const gpu = dawn.create([]);
  probes.push(gpu);
  return (await gpu.requestAdapter()) === null ? INSTALL_VULKAN_DRIVER : '';
}

const missing = await missingForWebGpu();

/** True where the WebGPU tests are skipped: Dawn gives no adapter, and not in CI. */
export const skipWebGpu = missing !== '' && !process.env.CI;

/** A test or suite name that says it was skipped and why. */
export function webGpuName(name: string): string {
  return skipWebGpu ? `${name} (SKIPPED: ${missing})` : name;
}

// The support module is loaded once per test file, so every file that needs WebGPU says it.
if (skipWebGpu) console.warn(`\n*** SKIPPING the WebGPU tests of this file: ${missing}. In CI (CI set) this is a failure. ***\n`);
