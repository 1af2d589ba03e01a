// The generated trainer on the webgpu backend: `npx tsx generated/stories260k/train.mts --backend
// webgpu` trains through Dawn (lavapipe in CI), its quantized linear layers on the compiled WGSL
// kernels of generated/stories260k/wgsl, and says so.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { skipWebGpu, webGpuName } from '../support/webgpu-driver.ts';

it.skipIf(skipWebGpu)(webGpuName('trains stories260K for a step with --backend webgpu, every quantized linear layer on the compiled kernels'), () => {
  const out = mkdtempSync(join(tmpdir(), 'qalc-generated-webgpu-'));
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'generated/stories260k/train.mts', '--backend', 'webgpu', '--steps', '1', '--out', out], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).toMatch(/webgpu backend: .*; \d+ compiled f32 WGSL kernels of spec stories260k for the quantized linear layers/);
  expect(r.stderr).toMatch(/on the compiled kernels: [1-9]\d* forward and [1-9]\d* backward calls; on the op kernels: 0 forward, 0 backward\n/);
  expect(r.stderr).toMatch(/stories260k: held-out loss \d+\.\d+ → \d+\.\d+ after 1 steps/);
  const [step] = readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { loss: number });
  expect(Number.isFinite(step!.loss)).toBe(true);
}, 300_000);
