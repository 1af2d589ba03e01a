// qalc's own INT-N format as a user relies on it: names and row order mean what they say (the
// q and k projections dequantized the Hugging Face way are the Hugging Face model's rows), it
// reads back to the same codes, scales and zeros, `eval` of the export gives the unmerged
// adapters' held-out loss, and files of the first version (llama2.c order) still read.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { EXPORT_FORMATS, exportFormat } from '../../src/export/formats.ts';
import { mergeModel, readMergedModel, writeMergedModel, type MergedModel } from '../../src/export/merged-model.ts';
import { readSafetensors, writeSafetensorsAtomic } from '../../src/export/safetensors.ts';
import { writeExport } from '../../src/export/write-export.ts';
import { readHfCheckpoint } from '../../src/model/hf-checkpoint.ts';
import { packQweight, unpackQweight } from '../../src/quant/gptq-pack.ts';
import { quantizeRtn } from '../../src/quant/rtn.ts';
import { evaluateRun } from '../../src/train/evaluate-run.ts';
import { exportFromRun } from '../../src/train/export-run.ts';
import { QaLoraModel } from '../../src/train/qalora-model.ts';
import { specForEveryProjection } from '../../src/train/qalora-spec.ts';
import { STORIES260K } from '../train/tiny-model.ts';
import { ops, trainedRun, type TrainedRun } from './trained-run.ts';

let run: TrainedRun;
let exported: string;
beforeAll(async () => {
  run = await trainedRun();
  const prepared = await exportFromRun(run.plan, run.work, run.checkpoint, ops);
  exported = join(run.work, 'qalc-export');
  writeExport(exported, exportFormat('qalc'), prepared.source);
}, 120_000);

describe('qalc export --format qalc', () => {
  it('is in the registry under its spec names too', () => {
    expect(exportFormat('safetensors')).toBe(EXPORT_FORMATS.find((f) => f.name === 'qalc'));
  });

  it('evaluates to the held-out loss of the unmerged adapters (≤ 1e-6 relative, cpu backend)', async () => {
    const adapters = await evaluateRun({ plan: run.plan, specDir: run.work, checkpoint: run.checkpoint, ops });
    const merged = await evaluateRun({ plan: run.plan, specDir: run.work, mergedModel: exported, ops });
    expect(adapters.what).toMatch(/adapters of .* \(step 4\)/);
    expect(Math.abs(merged.loss - adapters.loss) / adapters.loss).toBeLessThanOrEqual(1e-6);
    expect(merged.tokens).toBe(adapters.tokens);
  });

  it('carries its tokenizer and plan, and reads back to the same codes, scales and zeros', async () => {
    const again = readMergedModel(join(exported, 'model.safetensors'));
    const prepared = await exportFromRun(run.plan, run.work, run.checkpoint, ops);
    const original: MergedModel = prepared.source.merged;
    expect(again.tokenizer?.bytes).toEqual(new Uint8Array(readFileSync(run.plan.model.tokenizer!)));
    expect(JSON.parse(again.plan!).spec).toBe('exported');
    again.blocks.forEach((block, l) => {
      for (const [p, projection] of Object.entries(block.projections)) {
        const before = original.blocks[l]!.projections[p as 'q'];
        if (projection.kind !== 'quantized' || before.kind !== 'quantized') throw new Error(`${p} should be quantized`);
        expect(projection.weight.q).toEqual(before.weight.q);
        // Stored as float32: equal to the float64 merge up to that rounding.
        expect(projection.weight.scales).toEqual(before.weight.scales.map(Math.fround));
        expect(projection.weight.zeros).toEqual(before.weight.zeros.map(Math.fround));
      }
    });
  });
});

describe('names and rotary order', () => {
  it('q_proj and k_proj dequantized the Hugging Face way are the Hugging Face model, quantized', () => {
    // RTN quantizes each output column on its own, so quantizing the Hugging Face rows gives
    // exactly the stored file's columns when (and only when) they are in Hugging Face order.
    const hf = readHfCheckpoint(join(STORIES260K, '../../stories260K-hf'));
    const model = new QaLoraModel(hf, specForEveryProjection(hf.arch, (_p, inFeatures) => ({ bits: 4, group: inFeatures === 172 ? 43 : 32, adapter: null })));
    const path = join(run.work, 'b0.safetensors');
    writeMergedModel(path, mergeModel(model, hf, 'b0'));
    const file = readSafetensors(path);
    const hfWeights = readSafetensors(join(STORIES260K, '../../stories260K-hf/model.safetensors'));
    for (const name of ['model.layers.0.self_attn.q_proj', 'model.layers.3.self_attn.k_proj', 'model.layers.2.mlp.up_proj']) {
      const original = hfWeights.tensors.get(`${name}.weight`)!;
      const [N, K] = original.shape as [number, number];
      const inputMajor = new Float64Array(K * N);
      for (let o = 0; o < N; o++) for (let i = 0; i < K; i++) inputMajor[i * N + o] = original.data[o * K + i]!;
      const expected = quantizeRtn(inputMajor, K, N, { bits: 4, groupSize: 32 });
      expect(unpackQweight(file.tensors.get(`${name}.qweight`)!.data as Int32Array, K, N, 4), name).toEqual(expected.q);
      expect(file.tensors.get(`${name}.scales`)!.data, name).toEqual(Float32Array.from(expected.scales));
      expect(file.tensors.get(`${name}.zeros`)!.data, name).toEqual(Float32Array.from(expected.zeros));
    }
  });

  it('still reads qalc-merged-1 files (llama2.c row order under those names) as the same model', () => {
    const path = join(exported, 'model.safetensors');
    const current = readMergedModel(path);
    // A version-1 file: the same model with q and k in llama2.c's order, tagged merged-1.
    const legacy = join(run.work, 'legacy.safetensors');
    const file = readSafetensors(path);
    const tensors = [...file.tensors.values()].map((t) => {
      const match = /^model\.layers\.(\d+)\.self_attn\.([qk])_proj\.(qweight|scales|zeros)$/.exec(t.name);
      if (!match) return t;
      const projection = current.blocks[Number(match[1])]!.projections[match[2] as 'q' | 'k'];
      if (projection.kind !== 'quantized') throw new Error('quantized expected');
      const w = projection.weight; // qalc's own order
      const data = match[3] === 'qweight' ? packQweight(w.q, w.inFeatures, w.outFeatures, w.bits) : Float32Array.from(match[3] === 'scales' ? w.scales : w.zeros);
      return { ...t, data };
    });
    writeSafetensorsAtomic(legacy, tensors, { ...file.metadata, format: 'qalc-merged-1' });
    const old = readMergedModel(legacy);
    old.blocks.forEach((block, l) => {
      for (const p of ['q', 'k'] as const) {
        const a = block.projections[p], b = current.blocks[l]!.projections[p];
        if (a.kind !== 'quantized' || b.kind !== 'quantized') throw new Error('quantized expected');
        expect(a.weight.q).toEqual(b.weight.q);
        expect(a.weight.zeros).toEqual(b.weight.zeros);
      }
    });
  });
});

