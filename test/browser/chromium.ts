// Debian's Chromium for the browser tests, driven by playwright-core. .ci/run installs it; without
// it a test fails in CI (CI set) and is skipped, loudly, elsewhere.
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';
/** WebGPU on Chromium's bundled SwiftShader, and nothing that reaches the network. */
export const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run',
];

export const hasChromium = existsSync(CHROMIUM);
export const chromiumMissing = `${CHROMIUM} is missing: install Debian's Chromium (\`apt-get install -y chromium\`; .ci/run does this in CI)`;

/** Whether to skip `what`; says so on stderr when it does. */
export function skipWithoutChromium(what: string): boolean {
  const skip = !hasChromium && !process.env.CI;
  if (skip) console.warn(`\n*** SKIPPING ${what}: ${chromiumMissing}. In CI (CI set) this is a failure. ***\n`);
  return skip;
}

/** The suffix a skipped test's title carries, so the reporter shows why. */
export const skippedTitle = (skip: boolean) => (skip ? ` (SKIPPED: ${chromiumMissing})` : '');

/**
 * Chromium's WebGPU runs on its own SwiftShader, which it finds through the Vulkan loader: a
 * VK_ICD_FILENAMES or VK_DRIVER_FILES meant for Dawn (a GPU's driver, or nothing, to see what
 * qalc does without one) would hide it, so they are not passed on.
 */
export function chromiumEnv(): Record<string, string> {
  const hidden = new Set(['VK_ICD_FILENAMES', 'VK_DRIVER_FILES', 'VK_ADD_DRIVER_FILES']);
  return Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => !hidden.has(entry[0]) && entry[1] !== undefined));
}
