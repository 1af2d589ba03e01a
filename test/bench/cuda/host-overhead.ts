// The host's share of a cuda training step, measured without a GPU: `qalc train`'s trainer on
// the cuda device ops over a port that launches nothing (every kernel, copy and GEMM returns at
// once; a read-back answers ones, so the loss and the gradient norm stay finite). What is left
// of a step's time is the JavaScript that decides what to launch: argument binding, the device
// arrays' bookkeeping, the host's dropout masks. On the H200 the GPU's work of a 4-block
// 7B-shaped step is ~80 ms; the host's, measured here, must stay below it. Not a CI test.
//
//   npx tsx test/bench/cuda/host-overhead.ts SPEC [STEPS]        # a spec with model shapes, e.g.
//       .device/train7b/llama2-7b-l4.qal (test/bench/cuda/train/prepare.sh writes it)
//   node --import tsx --cpu-prof test/bench/cuda/host-overhead.ts SPEC    # where the time goes
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import type { CudaDevicePort, DeviceBuffer } from '../../../src/runtime/cuda/cuda.ts';
import { deviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { train } from '../../../src/train/trainer.ts';
import { readFileSync } from 'node:fs';

/** A GPU that does nothing: buffers with addresses but no memory; a download fills ones. */
function idlePort(): CudaDevicePort {
  let next = 0x1000n;
  return {
    loadModule: () => ({ function: (symbol) => ({ symbol, handle: 0 }) }),
    alloc(bytes): DeviceBuffer {
      const pointer = next;
      next += BigInt(bytes + 256);
      return {
        pointer, bytes,
        upload: () => {},
        download: (destination) => {
          if (destination instanceof Float32Array) destination.fill(1);
        },
        fill: () => {}, copyFrom: () => {}, free: () => {},
      };
    },
    launch: () => {},
    synchronize: () => {},
    gemm: () => {},
  };
}

const [specArg, stepsArg] = process.argv.slice(2);
if (specArg === undefined) throw new Error('usage: host-overhead.ts SPEC [STEPS]');
const specPath = resolve(specArg);
const front = frontEnd(specPath);
if (front.plan === undefined) throw new Error(front.diagnostics.map((d) => d.message).join('\n'));
const { manifest } = await loadCompiledKernels(front.plan, { targets: ['cuda'] });
const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
const ops = deviceOps(idlePort(), { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpuBackend().ops, 'bf16');
const out = mkdtempSync(join(tmpdir(), 'qalc-host-overhead-'));
await train({ plan: front.plan, specDir: dirname(specPath), out, steps: Number(stepsArg ?? 4), ops, evalBatches: 1, randomWeights: {} });
const steps = readFileSync(join(out, 'train.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; seconds: number });
console.log(`host time a step (no GPU work): ${steps.map((s) => `${(s.seconds * 1000).toFixed(1)} ms`).join(', ')}; ${ops.launches()} launches`);
