// embedding = host (QALC_CUDA_EMBEDDING=host) on the simulated device: the host gathers the
// batch's rows of its 16-bit copy of the table, the device widens them — the float32 rows the
// gather kernel writes from the device's 16-bit table, bit for bit, without that table in device
// memory (vocab × dim 16-bit values, 250 MiB at the 7B shape).
import { describe, expect, it } from 'vitest';
import type { ModelOpManifestKernel } from '../../../src/backends/manifest.ts';
import { modelOpKernels } from '../../../src/backends/cuda/model-ops.ts';
import { deviceOps, embeddingPlaceOf, type EmbeddingPlace } from '../../../src/runtime/cuda/device-ops.ts';
import { createRng } from '../../../src/reference/random.ts';
import { TYPESCRIPT_OPS } from '../../../src/runtime/typescript/ops.ts';
import { compileSpec } from '../../support/inline-spec.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const SPEC = 'model { dim = 24  hidden_dim = 40  layers = 1  heads = 2  kv_heads = 1  vocab = 999  context = 64 }\nquant { bits = 4  group = 8 }\nadapter { rank = 2  alpha = 4 }';
const plan = compileSpec(SPEC).plan!;
const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
const rows = 37, channels = 24, vocab = 999;

/** Two forwards' embeddings (other tokens) with the table where `place` says; the rows and the device memory after. */
function embedded(activation: 'bf16' | 'f16', place: EmbeddingPlace) {
  const modelOps: ModelOpManifestKernel[] = modelOpKernels(plan, { precision: activation }).map((k) => ({ ...k, file: `cuda/ops/${k.kernel}.cu`, codeHash: '' }));
  const device = new SimulatedModelOpDevice([], modelOps);
  const ops = deviceOps(device, { kernels: [], modelOps: modelOps.map(image) }, TYPESCRIPT_OPS, activation, { path: 'auto', embedding: place });
  const rng = createRng(7);
  const table = Float32Array.from({ length: vocab * channels }, () => rng.normal());
  const outputs: Float32Array[] = [];
  for (let step = 0; step < 2; step++) {
    const tokens = Array.from({ length: rows }, () => Math.floor(rng.uniform(0, vocab)));
    const out = new Float32Array(rows * channels);
    ops.embeddingForward(out, tokens, table, rows, channels);
    ops.syncToHost([out]);
    outputs.push(out);
  }
  return { outputs, peakBytes: ops.deviceStats!().peakBytes, launches: device.modelOpLaunches };
}

describe.each(['bf16', 'f16'] as const)('the embedding gathered on the host, %s activations', (activation) => {
  it('writes the device gather\'s float32 rows bit for bit, without the table in device memory', () => {
    const device = embedded(activation, 'device');
    const host = embedded(activation, 'host');
    host.outputs.forEach((out, step) => expect(out, `step ${step + 1}`).toEqual(device.outputs[step]));
    expect(host.launches).not.toContain('embedding.forwardFromActivationTable');
    expect(device.launches).toContain('embedding.forwardFromActivationTable');
    // The 16-bit table (vocab × dim × 2 bytes) is not on the device; the uploaded rows are one step's temporary.
    expect(device.peakBytes - host.peakBytes).toBeGreaterThanOrEqual(vocab * channels * 2 - 2 * rows * channels * 2);
  });
});

describe('QALC_CUDA_EMBEDDING', () => {
  it('is device unless it says host, and refuses anything else', () => {
    expect([undefined, '', 'device', 'host'].map(embeddingPlaceOf)).toEqual(['device', 'device', 'device', 'host']);
    expect(() => embeddingPlaceOf('gpu')).toThrow(/QALC_CUDA_EMBEDDING=gpu/);
  });
});
