// `qalc train --backend webgpu` as a user runs it: a real process that trains and says where it
// ran, and, on a machine whose Vulkan loader finds no driver, exit status 1 with what to install.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { skipWebGpu, webGpuName } from '../../support/webgpu-driver.ts';

function qalc(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['src/cli/qalc.mjs', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('qalc train --backend webgpu', () => {
  it.skipIf(skipWebGpu)(webGpuName('trains stories260K on the device and says which adapter and which kernels ran it'), () => {
    const out = mkdtempSync(join(tmpdir(), 'qalc-webgpu-cli-'));
    const r = qalc(['train', 'examples/stories260k.qal', '--backend', 'webgpu', '--steps', '1', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/webgpu backend: .+; \d+ compiled f32 WGSL kernels of spec stories260k for the quantized linear layers, from generated\/stories260k, every other op on the op kernels/);
    expect(r.stderr).toMatch(/webgpu: quantized linear layers on the compiled kernels: [1-9]\d* forward and [1-9]\d* backward calls; on the op kernels: 0 forward, 0 backward\n/);
    expect(r.stderr).toMatch(/stories260k: 1 steps .* tokens\/s; held-out loss \d+\.\d+ → \d+\.\d+/);
    expect(readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
  }, 120_000);

  it('names the Vulkan driver to install when Dawn finds no adapter', () => {
    const nowhere = join(tmpdir(), 'no-such-icd.json');
    const r = qalc(['train', 'examples/stories260k.qal', '--backend', 'webgpu', '--steps', '1', '--out', mkdtempSync(join(tmpdir(), 'qalc-webgpu-none-'))],
      { VK_DRIVER_FILES: nowhere, VK_ICD_FILENAMES: nowhere });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/qalc train: the webgpu backend cannot run here: WebGPU: Dawn found no adapter\. It needs a Vulkan driver: .*mesa-vulkan-drivers/);
  });
});
