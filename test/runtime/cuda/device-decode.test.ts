// `qalc generate --backend cuda`'s decode path (src/runtime/cuda/device-decode.ts) on the
// simulated device (./simulated-model-ops.ts): stories260K quantized (4-bit, group 16 / 43) with
// the adapters of a short cpu run, a ragged prompt, and more positions than one tile of the
// decode attention kernel's keys — step by step, its logits are the cpu backend's (the merged
// model's LlamaForward) to the linear kernels' bf16 rounding, and greedy generation picks the
// same tokens; the same decoder over the TypeScript ops and a host KV cache gives the cpu
// backend's logits to float32 rounding (the decode path's math, the device's aside).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DECODE_KEY_TILE } from '../../../src/backends/cuda/model-ops/decode-attention.ts';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import { generate } from '../../../src/model/generate.ts';
import type { DecodeModel } from '../../../src/model/llama-forward.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { kvCacheShape, OpsDecoder } from '../../../src/runtime/cuda/device-decode.ts';
import { deviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { hostKvCache } from '../../../src/runtime/typescript/decode-attention.ts';
import { TYPESCRIPT_OPS } from '../../../src/runtime/typescript/ops.ts';
import { specModelWithRun, specQaLoraModelWithRun } from '../../../src/train/spec-model.ts';
import { train } from '../../../src/train/trainer.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const shared = (path: string) => JSON.stringify(resolve('../shared', path));
const dir = mkdtempSync(join(tmpdir(), 'qalc-cuda-decode-'));
const specPath = join(dir, 'stories260k-decode.qal');
writeFileSync(specPath, `spec stories260k_decode
model {
  checkpoint = ${shared('models/stories260K/stories260K.bin')}
  tokenizer = ${shared('models/stories260K/tok512.bin')}
}
quant { bits = 4  group = 16 }
override proj down { group = 43 }
adapter { kind = qalora  rank = 4  alpha = 8  dropout = 0.1 }
target cuda { arch = [sm_90a]  activation = bf16 }
train {
  data = ${shared('data/tinyshakespeare.txt')}
  seq_len = 16
  batch = 2
  steps = 4
  lr = 1e-2
  eval_every = 100
  checkpoint_every = 100
}
`);

/** Forward passes over which the decoders are compared: the prompt's, then generated ones, past one attention tile. */
const STEPS = DECODE_KEY_TILE + 13;

/** The decoder, recording each step's logits. */
function recording(model: DecodeModel): { model: DecodeModel; logits: Float32Array[] } {
  const logits: Float32Array[] = [];
  return { logits, model: { arch: model.arch, forward: (token, pos) => { const out = model.forward(token, pos); logits.push(out.slice()); return out; } } };
}

/** The largest |a − b| over the step's logits, relative to the largest |b|. */
function relativeError(a: Float32Array, b: Float32Array): number {
  let error = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    error = Math.max(error, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return error / scale;
}

describe('generate on the cuda decode path (simulated device)', async () => {
  const front = frontEnd(specPath);
  if (front.plan === undefined) throw new Error(front.diagnostics.map((d) => d.message).join('\n'));
  const plan = front.plan;
  const run = join(dir, 'run');
  await train({ plan, specDir: dir, out: run, evalBatches: 1, ops: cpuBackend().ops });
  const checkpoint = join(run, 'checkpoint.safetensors');
  const cpu = cpuBackend();
  const reference = specModelWithRun(plan, dir, checkpoint, cpu.ops);
  const tokenizer = reference.tokenizer;
  // Ragged: not a multiple of anything the kernels tile by.
  const prompt = tokenizer.encode('Once upon a time, a little', { bos: false });
  const options = { steps: STEPS, temperature: 0, prompt };
  const cpuRun = recording(cpu.decoder(reference.weights));
  const cpuText = generate(cpuRun.model, tokenizer, options);
  // The run's adapters move the logits by more than the tolerance: a decode path that dropped them would fail.
  const withoutRun = recording(cpu.decoder(specModelWithRun(plan, dir, join(dir, 'no-run.safetensors'), cpu.ops).weights));
  generate(withoutRun.model, tokenizer, { ...options, steps: prompt.length });
  const adapterEffect = Math.max(...withoutRun.logits.map((logits, pos) => relativeError(logits, cpuRun.logits[pos]!)));

  it('gives the cpu backend\'s logits step by step (bf16 rounding) and, greedy, its tokens', async () => {
    const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
    const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
    const device = new SimulatedModelOpDevice(linear, manifest.modelOps);
    const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
    const ops = deviceOps(device, { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpu.ops, 'bf16');
    const { model, weights, description } = specQaLoraModelWithRun(plan, dir, checkpoint, ops);
    expect(description).toContain('with the adapters of');
    const decoder = new OpsDecoder(model, weights, ops, ops.kvCache(kvCacheShape(model.arch, STEPS)));
    const cudaRun = recording(decoder);
    const cudaText = generate(cudaRun.model, tokenizer, options);

    expect(prompt.length).toBeGreaterThan(3);
    expect(cudaRun.logits.length).toBeGreaterThan(DECODE_KEY_TILE + 1);
    const errors = cudaRun.logits.map((logits, pos) => relativeError(logits, cpuRun.logits[pos]!));
    console.log(`decode on the simulated device: ${cudaRun.logits.length} steps (prompt ${prompt.length}), largest relative logit error ${Math.max(...errors).toExponential(2)} (the adapters move them by ${adapterEffect.toExponential(2)}); ` +
      `tokens ${cudaText.tokens.join(',') === cpuText.tokens.join(',') ? 'equal' : 'differ'}: "${cudaText.text}" vs cpu "${cpuText.text}"`);
    expect(adapterEffect).toBeGreaterThan(2e-2);
    errors.forEach((error, pos) => expect(error, `position ${pos}`).toBeLessThan(2e-2));
    expect(cudaText.tokens).toEqual(cpuText.tokens);
    // Every step on the device: each block's k, v appended and attended, the linear layers on their compiled kernels.
    const launched = device.modelOpLaunches;
    expect(launched.filter((l) => l === 'decode_attention.append')).toHaveLength(cudaRun.logits.length * model.arch.layers);
    expect(launched.filter((l) => l === 'decode_attention.forward')).toHaveLength(cudaRun.logits.length * model.arch.layers);
    expect(ops.stats.fallbackForward).toBe(0);
  });

  it('over the TypeScript ops and a host KV cache, gives the cpu backend\'s logits (float32 rounding)', () => {
    const { model, weights } = specQaLoraModelWithRun(plan, dir, checkpoint, TYPESCRIPT_OPS);
    const decoder = recording(new OpsDecoder(model, weights, TYPESCRIPT_OPS, hostKvCache(kvCacheShape(model.arch, STEPS))));
    const text = generate(decoder.model, tokenizer, options);
    decoder.logits.forEach((logits, pos) => expect(relativeError(logits, cpuRun.logits[pos]!), `position ${pos}`).toBeLessThan(1e-4));
    expect(text.tokens).toEqual(cpuText.tokens);
  });

  it('refuses positions past its cache', () => {
    const { model, weights } = specQaLoraModelWithRun(plan, dir, checkpoint, TYPESCRIPT_OPS);
    const decoder = new OpsDecoder(model, weights, TYPESCRIPT_OPS, hostKvCache(kvCacheShape(model.arch, 4)));
    expect(() => decoder.forward(1, 4)).toThrow('position 4 is outside the KV cache\'s 4 positions');
  });
});
