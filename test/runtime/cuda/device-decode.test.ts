// `qalc generate --backend cuda`'s decode path (src/runtime/cuda/device-decode.ts) on the
// simulated device (./simulated-model-ops.ts): stories260K quantized (4-bit, group 16 / 43) with
// the adapters of a short cpu run, a ragged prompt, and more positions than one tile of the
// decode attention kernel's keys — step by step, its logits are the cpu backend's (the merged
// model's LlamaForward) to the linear kernels' bf16 rounding, and greedy generation picks the
// same tokens; the same decoder over the TypeScript ops and a host KV cache gives the cpu
// backend's logits to float32 rounding (the decode path's math, the device's aside). With the
// step captured in a CUDA graph and replayed (the simulated device records and replays: ./
// simulated-device.ts), the generation is the uncaptured one's bit for bit.
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
import { graphSettingOf, hostDecodeSteps, kvCacheShape, OpsDecoder } from '../../../src/runtime/cuda/device-decode.ts';
import { deviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { describeDecodeGraph } from '../../../src/cli/commands/generate-cuda.ts';
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

  const { manifest } = await loadCompiledKernels(plan, { targets: ['cuda'] });
  const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  /** The decoder on a fresh simulated device (with CUDA graphs unless `graphs` is false). */
  const simulated = (graph: boolean, withGraphs = true) => {
    const device = new SimulatedModelOpDevice(linear, manifest.modelOps);
    if (!withGraphs) device.withoutGraphs();
    const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
    const ops = deviceOps(device, { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpu.ops, 'bf16');
    const { model, weights, description } = specQaLoraModelWithRun(plan, dir, checkpoint, ops);
    const decoder = new OpsDecoder(model, weights, ops, ops.decodeSteps(kvCacheShape(model.arch, STEPS), model.arch.ropeTheta), { graph });
    return { device, ops, model, weights, decoder, description };
  };

  it('gives the cpu backend\'s logits step by step (bf16 rounding) and, greedy, its tokens', () => {
    const { device, ops, model, decoder, description } = simulated(false);
    expect(description).toContain('with the adapters of');
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
    expect(decoder.graphState()).toEqual({ mode: 'launches', why: 'QALC_CUDA_GRAPH=0' });
    expect(device.captures).toBe(0);
  });

  it('captured once in a CUDA graph and replayed, gives the uncaptured generation\'s tokens and logits bit for bit', () => {
    const uncaptured = simulated(false);
    const plainRun = recording(uncaptured.decoder);
    const plainText = generate(plainRun.model, tokenizer, options);
    const captured = simulated(true);
    // As the CLI runs it: untimed forwards at position 0 until the step is captured (the fourth:
    // the first sends the weights up, the next two allocate nothing).
    const launchesBefore = captured.ops.launches();
    captured.decoder.forward(tokenizer.bos, 0);
    captured.decoder.forward(tokenizer.bos, 0);
    const settledBefore = captured.ops.launches();
    expect(captured.decoder.warmUp(tokenizer.bos)).toBe(2); // the third forward settled, the fourth captured
    const settledLaunches = captured.ops.launches() - settledBefore;
    expect(launchesBefore).toBe(0);
    const graphRun = recording(captured.decoder);
    const launchesAfterWarmUp = captured.ops.launches();
    const graphText = generate(graphRun.model, tokenizer, options);

    expect(graphRun.logits.length).toBe(plainRun.logits.length);
    expect(graphRun.logits.length).toBeGreaterThan(DECODE_KEY_TILE + 1);
    graphRun.logits.forEach((logits, pos) => expect(logits, `position ${pos}`).toEqual(plainRun.logits[pos]));
    expect(graphText.tokens).toEqual(plainText.tokens);
    expect(graphText.tokens).toEqual(cpuText.tokens);
    // Every token of the generation a replay: not one launch from the host, one graph launch each.
    const state = captured.decoder.graphState();
    expect(state).toMatchObject({ mode: 'graph', capturedAt: 3, replays: graphRun.logits.length + 1 });
    expect(captured.ops.launches()).toBe(launchesAfterWarmUp);
    expect(captured.device.captures).toBe(1);
    expect(captured.device.graphLaunches).toBe(graphRun.logits.length + 1);
    // The graph holds a settled step's launches (the third's, made again during the capture: 2 × as
    // many) and lm_head's cuBLAS GEMM (not among the launches), nothing for the read-back.
    expect(state.mode === 'graph' && state.nodes).toBe(settledLaunches / 2 + 1);
    expect(describeDecodeGraph(state)).toMatch(/^decode step: a CUDA graph of \d+ device calls, captured at step 4 and replayed \d+ times/);
    // The replays appended and attended at every position: the same launches as the uncaptured run's.
    const count = (device: typeof captured.device, name: string) => device.modelOpLaunches.filter((l) => l === name).length;
    expect(count(captured.device, 'decode_attention.append')).toBe((graphRun.logits.length + 4) * captured.model.arch.layers);
    expect(count(uncaptured.device, 'decode_attention.append')).toBe(plainRun.logits.length * uncaptured.model.arch.layers);
  });

  it('refuses to capture a step that copies from the host (a graph would read that memory at every replay), and runs on after', () => {
    const { ops, model, weights } = simulated(true);
    const steps = ops.decodeSteps(kvCacheShape(model.arch, 4), model.arch.ropeTheta);
    const C = model.arch.dim, out = new Float32Array(C), table = weights.tokenEmbedding.data;
    steps.begin(5, 0);
    // A first call allocates (the table, the output's buffer): not capturable.
    expect(() => steps.capture!(() => ops.embeddingForward(out, [5], table, 1, C), [out])).toThrow('cuMemAlloc while a CUDA graph is being captured');
    ops.embeddingForward(out, [5], table, 1, C);
    // The training path's embedding uploads its token ids, every call: not capturable; the step's reads them from the step buffer.
    expect(() => steps.capture!(() => ops.embeddingForward(out, [5], table, 1, C), [out])).toThrow('a host→device copy while a CUDA graph is being captured');
    const graph = steps.capture!(() => steps.embed(out, table, C), [out]);
    expect(graph.nodes).toBe(1);
    const expected = new Float32Array(C);
    for (const token of [5, 9]) {
      steps.begin(token, 1);
      graph.replay();
      ops.embeddingForward(expected, [token], table, 1, C);
      ops.syncToHost([expected]);
      expect(out).toEqual(expected);
    }
    expect(out).not.toEqual(new Float32Array(C));
  });

  it('runs every op from the host on a device without CUDA graphs, and says why', () => {
    const { decoder, device } = simulated(true, false);
    expect(decoder.warmUp(tokenizer.bos)).toBe(1);
    const run = recording(decoder);
    generate(run.model, tokenizer, { ...options, steps: 6 });
    expect(device.captures).toBe(0);
    expect(describeDecodeGraph(decoder.graphState())).toBe('decode step: every op launched from the host each token (no CUDA graph: the device has no CUDA graphs)');
  });

  it('QALC_CUDA_GRAPH: unset or 1 captures, 0 does not, anything else is refused', () => {
    expect(graphSettingOf(undefined)).toBe(true);
    expect(graphSettingOf('1')).toBe(true);
    expect(graphSettingOf('0')).toBe(false);
    expect(() => graphSettingOf('yes')).toThrow('QALC_CUDA_GRAPH=yes: expected 1');
  });

  it('over the TypeScript ops and a host KV cache, gives the cpu backend\'s logits (float32 rounding)', () => {
    const { model, weights } = specQaLoraModelWithRun(plan, dir, checkpoint, TYPESCRIPT_OPS);
    const decoder = recording(new OpsDecoder(model, weights, TYPESCRIPT_OPS, hostDecodeSteps(TYPESCRIPT_OPS, hostKvCache(kvCacheShape(model.arch, STEPS)), model.arch.ropeTheta)));
    const text = generate(decoder.model, tokenizer, options);
    decoder.logits.forEach((logits, pos) => expect(relativeError(logits, cpuRun.logits[pos]!), `position ${pos}`).toBeLessThan(1e-4));
    expect(text.tokens).toEqual(cpuText.tokens);
  });

  it('refuses positions past its cache', () => {
    const { model, weights } = specQaLoraModelWithRun(plan, dir, checkpoint, TYPESCRIPT_OPS);
    const decoder = new OpsDecoder(model, weights, TYPESCRIPT_OPS, hostDecodeSteps(TYPESCRIPT_OPS, hostKvCache(kvCacheShape(model.arch, 4)), model.arch.ropeTheta));
    expect(() => decoder.forward(1, 4)).toThrow('position 4 is outside the KV cache\'s 4 positions');
  });
});
