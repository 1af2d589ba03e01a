// Where a cuda training step's device memory goes, measured without a GPU: `qalc train`'s trainer
// on the cuda device ops over a port that launches nothing, every DeviceArrays allocation charged
// to its call site (the three frames above DeviceArrays). The device's peak is the sum (nothing is freed
// before the process ends), so this is the table behind summary.json's device.peakBytes; run it
// at two depths to split the fixed part from a block's. Not a CI test.
//
//   npx tsx test/bench/cuda/device-memory.ts SPEC [STEPS]     # a spec with model shapes, e.g.
//       .device/train7b/llama2-7b-l4.qal (test/bench/cuda/train/prepare.sh writes it)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { DeviceBuffer } from '../../../src/runtime/cuda/cuda.ts';
import { DeviceArrays } from '../../../src/runtime/cuda/device-arrays.ts';
import { train } from '../../../src/train/trainer.ts';
import { idleDeviceOps } from './idle-device.ts';

const bySite = new Map<string, { calls: number; bytes: number }>();
const allocate = DeviceArrays.prototype.allocate;
DeviceArrays.prototype.allocate = function (this: DeviceArrays, bytes: number): DeviceBuffer {
  // The callers of DeviceArrays, not its own helpers (acquire, writeAs, …).
  const frames = (new Error().stack ?? '').split('\n').slice(2).filter((l) => !l.includes('device-arrays.ts'));
  const site = frames.slice(0, 3).map((l) => l.trim().replace(/^at /, '').replace(/\(.*\/src\//, '(')).join(' < ');
  const entry = bySite.get(site) ?? { calls: 0, bytes: 0 };
  entry.calls++;
  entry.bytes += bytes;
  bySite.set(site, entry);
  return allocate.call(this, bytes);
};

const [specArg, stepsArg] = process.argv.slice(2);
if (specArg === undefined) throw new Error('usage: device-memory.ts SPEC [STEPS]');
const { specPath, plan, ops } = await idleDeviceOps(specArg);
await train({ plan, specDir: dirname(specPath), out: mkdtempSync(join(tmpdir(), 'qalc-device-memory-')), steps: Number(stepsArg ?? 2), ops, evalBatches: 1, randomWeights: {} });
const rows = [...bySite].sort((a, b) => b[1].bytes - a[1].bytes);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0).padStart(7);
console.log(`device memory allocated: ${mib(rows.reduce((sum, [, e]) => sum + e.bytes, 0)).trim()} MiB`);
for (const [site, e] of rows.slice(0, 30)) console.log(`${mib(e.bytes)} MiB ${String(e.calls).padStart(5)}  ${site}`);
