// Adapter dropout's multipliers computed on the (simulated) device by the dropout model op
// (src/runtime/cuda/device-dropout.ts) from a layer's draws: exactly the host's expansion for
// ragged lengths, seeds, offsets past 2^32 and drop probabilities at the threshold's edges; ones
// without a mask; no op for a spec without dropout; several layers' multipliers from one launch
// (dropout-window.ts) exactly each layer's own; and a linear layer's forward and backward on
// the cuda ops give the very bits they give with the host's multipliers uploaded instead.
import { describe, expect, it } from 'vitest';
import { modelOpKernels } from '../../../src/backends/cuda/model-ops.ts';
import type { CudaManifestKernel, ModelOpManifestKernel } from '../../../src/backends/manifest.ts';
import { quantizeRtn } from '../../../src/quant/rtn.ts';
import { createRng } from '../../../src/reference/random.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { deviceDropout } from '../../../src/runtime/cuda/device-dropout.ts';
import { dropoutSeedWord } from '../../../src/runtime/cuda/dropout-seed.ts';
import { dropoutWindow } from '../../../src/runtime/cuda/dropout-window.ts';
import { deviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { modelOpLauncher } from '../../../src/runtime/cuda/model-op-launcher.ts';
import { keepScales } from '../../../src/runtime/kernel-buffers.ts';
import { dropoutDraws, drawBits } from '../../../src/runtime/typescript/dropout-draws.ts';
import type { AdapterActivations, QaLoraLinear } from '../../../src/runtime/typescript/qalora-linear.ts';
import { TYPESCRIPT_OPS } from '../../../src/runtime/typescript/ops.ts';
import { compileSpec } from '../../support/inline-spec.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const MODEL = 'model { dim = 64  hidden_dim = 172  layers = 1  heads = 4  kv_heads = 4  vocab = 128  context = 64 }';
const specWith = (dropout: number) => compileSpec(`quant { bits = 4  group = 16 }
override proj down { group = 43 }
adapter { kind = qalora  rank = 4  alpha = 8  dropout = ${dropout} }
target cuda { arch = [sm_90a]  activation = bf16 }`, MODEL).plan!;

const asManifest = (plan: ReturnType<typeof specWith>): ModelOpManifestKernel[] => modelOpKernels(plan).map((k) => ({ ...k, file: `cuda/ops/${k.kernel}.cu`, codeHash: '' }));
const image = <M>(manifest: M) => ({ manifest, fatbin: new Uint8Array(), origin: 'compiled' as const });

describe('dropout multipliers on the device', () => {
  const modelOps = asManifest(specWith(0.1));
  const device = new SimulatedModelOpDevice([], modelOps);
  const generate = deviceDropout(modelOpLauncher(device, modelOps.map(image)), dropoutSeedWord((bytes) => device.alloc(bytes)))!;
  const onDevice = (mask: Parameters<typeof generate>[1], p: number, count: number) => {
    const buffer = device.alloc(count * 4);
    buffer.fill(0xff); // NaN: an entry the op skips fails
    generate(buffer, mask, p, count);
    const got = new Float32Array(count);
    buffer.download(got);
    return got;
  };

  it('are the host\'s expansion bit for bit: ragged lengths, seeds, offsets past 2^32, several p', () => {
    for (const seed of [0, 99, 0xffffffff]) {
      for (const offset of [0, 5, 123_456_789, 2 ** 32 - 100, 2 ** 32 + 3]) { // 2^32 − 100: the counter wraps inside the layer
        for (const p of [0.05, 0.1, 0.5, 0.9]) {
          for (const count of [1, 7, 130 * 4, 37 * 43]) {
            const mask = dropoutDraws(seed, offset);
            expect(onDevice(mask, p, count), `seed ${seed} offset ${offset} p ${p} count ${count}`).toEqual(keepScales(mask, count, p));
          }
        }
      }
    }
  });

  it('decide at the threshold as the host does: p equal to a draw\'s z / 2^32 keeps it, one step above drops it', () => {
    const mask = dropoutDraws(17, 40);
    const z = drawBits(17, 40);
    for (const p of [z / 2 ** 32, (z + 1) / 2 ** 32]) {
      const got = onDevice(mask, p, 3);
      expect(got).toEqual(keepScales(mask, 3, p));
      expect(got[0]! > 0).toBe(p === z / 2 ** 32);
    }
  });

  it('are ones without a mask (an evaluation forward of a layer with dropout), and no op for a spec without dropout', () => {
    expect(onDevice(undefined, 0.1, 130)).toEqual(new Float32Array(130).fill(1));
    const none = asManifest(specWith(0));
    expect(none.map((k) => k.op)).not.toContain('dropout');
    const bare = new SimulatedModelOpDevice([], none);
    expect(deviceDropout(modelOpLauncher(bare, none.map(image)), dropoutSeedWord((bytes) => bare.alloc(bytes)))).toBeUndefined();
  });
});

describe('the dropout window: several layers\' multipliers a launch', () => {
  const modelOps = asManifest(specWith(0.1));
  const device = new SimulatedModelOpDevice([], modelOps);
  const generate = deviceDropout(modelOpLauncher(device, modelOps.map(image)), dropoutSeedWord((bytes) => device.alloc(bytes)))!;
  const read = (buffer: ReturnType<typeof device.alloc>, count: number) => {
    const got = new Float32Array(count);
    buffer.download(got);
    return got;
  };

  it('gives each layer of a forward its own multipliers, the next layers\' from the first one\'s launch', () => {
    for (const start of [0, 2 ** 32 - 1000]) { // the second wraps the counter inside the window
      const window = dropoutWindow(generate, (bytes) => device.alloc(bytes));
      // A block's draws at the 7B pattern, shrunk: four layers of 128 entries, two more, one of 344, then the next block.
      const counts = [128, 128, 128, 128, 128, 128, 344, 128, 128];
      let offset = start;
      for (const count of counts) {
        const mask = dropoutDraws(7, offset);
        expect(read(window.multipliers(mask, 0.1, count), count), `offset ${offset}`).toEqual(keepScales(mask, count, 0.1));
        offset += count;
      }
      // q with k and v, o with gate and up, down alone, the next q with its k.
      expect(window.launches()).toBe(4);
    }
  });

  it('launches again for another seed or p, an offset behind the window or past it, a misaligned one; ones without a mask from one launch', () => {
    const window = dropoutWindow(generate, (bytes) => device.alloc(bytes));
    const check = (mask: ReturnType<typeof dropoutDraws> | undefined, p: number, count: number) =>
      expect(read(window.multipliers(mask, p, count), count)).toEqual(keepScales(mask, count, p));
    check(dropoutDraws(1, 100), 0.1, 40); // a window of 120
    check(dropoutDraws(1, 140), 0.1, 80); // inside: no launch
    expect(window.launches()).toBe(1);
    check(dropoutDraws(2, 140), 0.1, 80); // another seed
    check(dropoutDraws(2, 140), 0.3, 80); // another p
    check(dropoutDraws(2, 100), 0.3, 40); // behind the window
    check(dropoutDraws(2, 102), 0.3, 40); // inside but 8 bytes in: a view would start off 16 bytes
    check(dropoutDraws(2, 102), 0.3, 240); // more than the window holds: a larger buffer
    check(dropoutDraws(2, 102 + 720 - 8), 0.3, 16); // past the window's end
    expect(window.launches()).toBe(7);
    check(undefined, 0.1, 50);
    check(undefined, 0.1, 200);
    check(undefined, 0.3, 10);
    expect(window.launches()).toBe(8);
  });
});

describe('a linear layer with dropout on the cuda ops', () => {
  it('computes the same bits with the multipliers made on the device as with the host\'s uploaded, forward and backward', async () => {
    const plan = specWith(0.1);
    const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
    const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
    const K = 64, N = 172, group = 16, rows = 37, rank = 4, L = K / group;
    const rng = createRng(3);
    const weight = quantizeRtn(Float64Array.from({ length: K * N }, () => rng.normal() * 0.1), K, N, { bits: 4, groupSize: group });
    const a = Float32Array.from({ length: L * rank }, () => rng.normal()), b = Float32Array.from({ length: rank * N }, () => rng.normal() * 0.1);
    const x = Float32Array.from({ length: rows * K }, () => rng.normal()), dy = Float32Array.from({ length: rows * N }, () => rng.normal());
    const run = (modelOps: readonly ModelOpManifestKernel[], seed = 0xc0ffee) => {
      const device = new SimulatedModelOpDevice(linear, modelOps);
      const ops = deviceOps(device, { kernels: linear.map(image), modelOps: modelOps.map(image) }, TYPESCRIPT_OPS, 'bf16');
      const layer: QaLoraLinear = {
        base: { kind: 'quantized', weight },
        adapter: { groupSize: group, rank, pooling: 'mean', scaling: 2, dropout: 0.1, a, b, gradA: new Float32Array(L * rank), gradB: new Float32Array(rank * N) },
      };
      const saved: AdapterActivations = { u: new Float32Array(rows * L), v: new Float32Array(rows * rank), mask: dropoutDraws(seed, 1000) };
      const y = new Float32Array(rows * N), dx = new Float32Array(rows * K);
      ops.qaloraLinearForward(y, x, rows, layer, saved);
      ops.qaloraLinearBackward(dx, dy, rows, layer, saved);
      const outputs = [y, saved.u, saved.v, dx, layer.adapter!.gradA, layer.adapter!.gradB];
      ops.syncToHost(outputs);
      return { outputs, launches: device.modelOpLaunches.filter((l) => l === 'dropout.multipliers').length, compiled: ops.stats.compiledForward + ops.stats.compiledBackward };
    };
    const generated = run(manifest.modelOps), uploaded = run(manifest.modelOps.filter((k) => k.op !== 'dropout'));
    expect(generated.compiled).toBe(2);
    expect(generated.launches).toBe(1); // the backward's adapter_grad reads the forward's window
    expect(uploaded.launches).toBe(0);
    generated.outputs.forEach((values, i) => expect(values, `output ${i}`).toEqual(uploaded.outputs[i]));
    // And the mask matters: another seed's draws give another v.
    expect(run(manifest.modelOps, 1).outputs[2]).not.toEqual(generated.outputs[2]);
  });
});
