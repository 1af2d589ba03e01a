// `qalc generate MERGED --backend cuda`'s decode path on the simulated device
// (./simulated-model-ops.ts): stories260K quantized (4-bit, group 16 / 43), trained 4 steps on the
// cpu backend, merged by `qalc merge`'s code into merged.safetensors and read back; the merged
// model decodes on the kernels of its plan without adapters (src/plan/merged-plan.ts) over its
// codes, scales and float zeros, and its greedy tokens are the cpu backend's on the same file,
// its logits within the linear kernels' bf16 rounding — while the adapters, had they been dropped,
// move the logits by more than that. The step, counted by kind, has no adapter launch at all.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { hasBinding } from '../../../src/backends/manifest.ts';
import { frontEnd } from '../../../src/compile.ts';
import { denseCheckpointOf, readMergedModel } from '../../../src/export/merged-model.ts';
import { generate } from '../../../src/model/generate.ts';
import type { DecodeModel } from '../../../src/model/llama-forward.ts';
import { parseTokenizer } from '../../../src/model/read-tokenizer.ts';
import { mergedPlan } from '../../../src/plan/merged-plan.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { cpuBackend } from '../../../src/runtime/cpu/backend.ts';
import { kvCacheShape, OpsDecoder } from '../../../src/runtime/cuda/device-decode.ts';
import { deviceOps } from '../../../src/runtime/cuda/device-ops.ts';
import { mergeRun } from '../../../src/train/merge-run.ts';
import { mergedQaLoraModel } from '../../../src/train/merged-qalora-model.ts';
import { specModelWithRun } from '../../../src/train/spec-model.ts';
import { train } from '../../../src/train/trainer.ts';
import { SimulatedModelOpDevice } from './simulated-model-ops.ts';

const shared = (path: string) => JSON.stringify(resolve('../shared', path));
const dir = mkdtempSync(join(tmpdir(), 'qalc-cuda-merged-decode-'));
const specPath = join(dir, 'stories260k-merged.qal');
writeFileSync(specPath, `spec stories260k_merged_decode
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

const STEPS = 40;

function recording(model: DecodeModel): { model: DecodeModel; logits: Float32Array[] } {
  const logits: Float32Array[] = [];
  return { logits, model: { arch: model.arch, forward: (token, pos) => { const out = model.forward(token, pos); logits.push(out.slice()); return out; } } };
}

function relativeError(a: Float32Array, b: Float32Array): number {
  let error = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    error = Math.max(error, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return error / scale;
}

/** Launches by kind: model ops by op.entry, linear kernels by role (their symbol's first word), cuBLAS as gemm. */
function byKind(device: SimulatedModelOpDevice): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of [...device.modelOpLaunches, ...device.launched.map((s) => s === 'gemm' ? 'gemm (lm_head)' : `linear ${s.split('_')[0]}`)]) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

describe('generate from a merged model on the cuda decode path (simulated device)', async () => {
  const front = frontEnd(specPath);
  if (front.plan === undefined) throw new Error(front.diagnostics.map((d) => d.message).join('\n'));
  const plan = front.plan;
  const run = join(dir, 'run');
  const cpu = cpuBackend();
  await train({ plan, specDir: dir, out: run, evalBatches: 1, ops: cpu.ops });
  const path = join(run, 'merged.safetensors');
  await mergeRun(plan, dir, join(run, 'checkpoint.safetensors'), path, cpu.ops);
  const merged = readMergedModel(path);
  const tokenizer = parseTokenizer(merged.tokenizer!.bytes, merged.arch.vocab, 'the merged model\'s tokenizer');
  const prompt = tokenizer.encode('Once upon a time, a little', { bos: false });
  const options = { steps: STEPS, temperature: 0, prompt };
  const cpuRun = recording(cpu.decoder(denseCheckpointOf(merged, path)));
  const cpuText = generate(cpuRun.model, tokenizer, options);
  const withoutRun = recording(cpu.decoder(specModelWithRun(plan, dir, join(dir, 'no-run.safetensors'), cpu.ops).weights));
  generate(withoutRun.model, tokenizer, { ...options, steps: prompt.length });
  const adapterEffect = Math.max(...withoutRun.logits.map((logits, pos) => relativeError(logits, cpuRun.logits[pos]!)));

  const decodePlan = mergedPlan(JSON.parse(merged.plan!) as Plan);
  const { manifest } = await loadCompiledKernels(decodePlan, { targets: ['cuda'] });
  const linear = manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  const simulated = (graph: boolean) => {
    const device = new SimulatedModelOpDevice(linear, manifest.modelOps);
    const image = <M>(m: M) => ({ manifest: m, fatbin: new Uint8Array(), origin: 'compiled' as const });
    const ops = deviceOps(device, { kernels: linear.map(image), modelOps: manifest.modelOps.map(image) }, cpu.ops, 'bf16');
    const { model, weights } = mergedQaLoraModel(merged, ops);
    const decoder = new OpsDecoder(model, weights, ops, ops.decodeSteps(kvCacheShape(model.arch, STEPS), model.arch.ropeTheta), { graph });
    return { device, ops, model, decoder };
  };

  it('compiles the merged plan\'s kernels without adapters, under the spec\'s name and _merged', () => {
    expect(decodePlan.spec).toBe('stories260k_merged_decode_merged');
    expect(decodePlan.layers.every((l) => l.adapter === null && !l.kernels.includes('adapter_grad') && !l.kernels.includes('merge'))).toBe(true);
    expect(decodePlan.totals.adapterParams).toBe(0);
    const decode = linear.filter((k) => k.role === 'decode');
    expect(decode.length).toBeGreaterThan(0);
    for (const k of decode) {
      expect(k.kernel).not.toContain('qalora');
      expect(hasBinding(k, 'adapterWeights')).toBe(false);
    }
  });

  it('gives the cpu backend\'s logits on the merged file step by step (bf16 rounding) and, greedy, its tokens; no adapter term runs', () => {
    const { device, ops, model, decoder } = simulated(false);
    const cudaRun = recording(decoder);
    const cudaText = generate(cudaRun.model, tokenizer, options);
    const errors = cudaRun.logits.map((logits, pos) => relativeError(logits, cpuRun.logits[pos]!));
    const launches = byKind(device);
    const perStep = Object.fromEntries(Object.entries(launches).map(([kind, n]) => [kind, n / cudaRun.logits.length]));
    console.log(`merged decode on the simulated device: ${cudaRun.logits.length} steps, largest relative logit error ${Math.max(...errors).toExponential(2)} (the adapters move them by ${adapterEffect.toExponential(2)}); ` +
      `tokens ${cudaText.tokens.join(',') === cpuText.tokens.join(',') ? 'equal' : 'differ'}: "${cudaText.text}"; launches a step by kind (${model.arch.layers} blocks): ${JSON.stringify(perStep)}`);
    expect(adapterEffect).toBeGreaterThan(2e-2);
    errors.forEach((error, pos) => expect(error, `position ${pos}`).toBeLessThan(2e-2));
    expect(cudaText.tokens).toEqual(cpuText.tokens);
    expect(ops.stats.fallbackForward).toBe(0);
    // Every linear of every block on its decode kernel, none with an adapter's prologue or epilogue.
    expect(launches['linear decode']).toBe(7 * model.arch.layers * cudaRun.logits.length);
    expect(Object.keys(launches).filter((kind) => kind.startsWith('linear') && kind !== 'linear decode')).toEqual([]);
  });

  it('captured in a CUDA graph, gives the uncaptured run\'s tokens', () => {
    const { decoder, device } = simulated(true);
    decoder.warmUp(tokenizer.bos);
    const text = generate(decoder, tokenizer, options);
    expect(decoder.graphState().mode).toBe('graph');
    expect(device.captures).toBe(1);
    expect(text.tokens).toEqual(cpuText.tokens);
  });
});
