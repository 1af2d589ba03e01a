// The adapter alone for PEFT, read back and applied the way PEFT applies it — in float64 to
// the dequantized base that `--with-base` writes in Hugging Face's layout — gives qalc's QA-LoRA
// layer outputs, for both variants: a plain LoRA whose A is expanded over its groups, and
// PEFT's use_qalora (mean over the group × in/group). The layout is the one PEFT 0.21 wrote in
// ../shared/models/stories260K-hf-peft-lora/.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportFormat, type ExportSource } from '../../src/export/formats.ts';
import { denseWeight } from '../../src/export/merged-model.ts';
import { PeftExportError } from '../../src/export/peft-adapter.ts';
import { readSafetensors } from '../../src/export/safetensors.ts';
import { writeExport } from '../../src/export/write-export.ts';
import { hfRowOrder } from '../../src/model/rope-permutation.ts';
import { createRng } from '../../src/reference/random.ts';
import { qaloraForward } from '../../src/reference/qalora-layer.ts';
import { exportFromRun } from '../../src/train/export-run.ts';
import { sharedFile } from '../train/tiny-model.ts';
import { ops, trainedRun, type TrainedRun } from './trained-run.ts';

const REFERENCE = sharedFile('models/stories260K-hf-peft-lora');

interface Exported { dir: string; source: ExportSource }

async function exported(run: TrainedRun, format: string): Promise<Exported> {
  const { source } = await exportFromRun(run.plan, run.work, run.checkpoint, ops);
  const dir = join(run.work, format);
  await writeExport(dir, exportFormat(format), source, { withBase: true });
  return { dir, source };
}

/** max relative difference between qalc's adapted layers and PEFT's formula on the written files. */
function peftAgainstQalc({ dir, source }: Exported): number {
  const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  const adapterFile = readSafetensors(join(dir, 'adapter_model.safetensors'));
  const baseFile = readSafetensors(join(dir, 'base', 'model.safetensors'));
  const rng = createRng(11);
  const T = 3;
  let worst = 0;
  for (const adapter of source.adapters!.adapters) {
    const { module, inFeatures: K, outFeatures: N } = adapter;
    const x = Float64Array.from({ length: T * K }, () => rng.normal());
    // qalc: its reference QA-LoRA layer on the unmerged quantized base, llama2.c row order.
    const l = Number(module.split('.')[2]);
    const base = denseWeight(source.base!.blocks[l]!.projections[adapter.projection]); // [N, K]
    const weight = new Float64Array(K * N);
    for (let o = 0; o < N; o++) for (let i = 0; i < K; i++) weight[i * N + o] = base[o * K + i]!;
    const qalc = qaloraForward({ inFeatures: K, outFeatures: N, weight, adapter }, x, T).y;
    // PEFT: W_hf x + (alpha/r) · B (A · pooled-or-plain x), every tensor from the files.
    const w = baseFile.tensors.get(`${module}.weight`)!.data;
    const a = adapterFile.tensors.get(`base_model.model.${module}.lora_A.weight`)!;
    const b = adapterFile.tensors.get(`base_model.model.${module}.lora_B.weight`)!.data;
    const [r, aCols] = a.shape as [number, number];
    const rank = (config.rank_pattern as Record<string, number>)[module] ?? (config.r as number);
    const alpha = (config.alpha_pattern as Record<string, number>)[module] ?? (config.lora_alpha as number);
    expect(r).toBe(rank);
    const scaling = alpha / rank;
    const g = config.qalora_group_size as number;
    const order = adapter.projection === 'q' ? hfRowOrder(N, source.merged.arch.heads) : adapter.projection === 'k' ? hfRowOrder(N, source.merged.arch.kvHeads) : undefined;
    for (let t = 0; t < T; t++) {
      const input = config.use_qalora
        ? Float64Array.from({ length: K / g }, (_, k) => { let s = 0; for (let j = 0; j < g; j++) s += x[t * K + k * g + j]!; return (s / g) * (K / g); })
        : x.subarray(t * K, (t + 1) * K);
      expect(input.length).toBe(aCols);
      const ax = Array.from({ length: r }, (_, j) => input.reduce((s, v, i) => s + a.data[j * aCols + i]! * v, 0));
      for (let o = 0; o < N; o++) {
        let y = 0;
        for (let i = 0; i < K; i++) y += w[o * K + i]! * x[t * K + i]!;
        for (let j = 0; j < r; j++) y += scaling * b[o * r + j]! * ax[j]!;
        const expected = qalc[t * N + (order ? order[o]! : o)]!;
        worst = Math.max(worst, Math.abs(y - expected) / (1e-3 + Math.abs(expected)));
      }
    }
  }
  return worst;
}

describe('qalc export --format peft-lora', () => {
  let run: TrainedRun;
  let lora: Exported;
  beforeAll(async () => {
    run = await trainedRun();
    lora = await exported(run, 'peft-lora');
  }, 120_000);

  it('applied as PEFT applies a LoRA, computes qalc\'s adapted layers (float32 files, ≤ 1e-5)', () => {
    expect(lora.source.adapters!.adapters.length).toBe(35);
    expect(lora.source.adapters!.adapters.some((a) => Math.max(...a.b.map(Math.abs)) > 1e-3)).toBe(true); // trained: B ≠ 0
    expect(peftAgainstQalc(lora)).toBeLessThan(1e-5);
  });

  it('has PEFT 0.21\'s layout: the reference\'s tensor names, shapes (but its rank) and config keys', () => {
    const ours = readSafetensors(join(lora.dir, 'adapter_model.safetensors'));
    const theirs = readSafetensors(join(REFERENCE, 'adapter_model.safetensors'));
    expect([...ours.tensors.keys()]).toEqual([...theirs.tensors.keys()]);
    for (const [name, t] of theirs.tensors) {
      const shape = ours.tensors.get(name)!.shape;
      expect(shape, name).toEqual(name.includes('lora_A') ? [2, t.shape[1]] : [t.shape[0], 2]);
    }
    expect(ours.metadata).toEqual(theirs.metadata);
    const config = JSON.parse(readFileSync(join(lora.dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    const reference = JSON.parse(readFileSync(join(REFERENCE, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(config)).toEqual(Object.keys(reference));
    expect(config).toMatchObject({ r: 2, lora_alpha: 4, use_qalora: false, peft_type: 'LORA', fan_in_fan_out: false, use_rslora: false });
    expect(new Set(config.target_modules as string[])).toEqual(new Set(reference.target_modules as string[]));
  });

  it('writes qalc\'s logits for the device check, and the base in Hugging Face layout', () => {
    const logits = JSON.parse(readFileSync(join(lora.dir, 'qalc-logits.json'), 'utf8')) as { tokens: number[]; logits: number[][] };
    expect(logits.tokens[0]).toBe(1);
    expect(logits.logits).toHaveLength(logits.tokens.length);
    expect(logits.logits[0]).toHaveLength(512);
    const config = JSON.parse(readFileSync(join(lora.dir, 'base', 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ hidden_size: 64, intermediate_size: 172, num_attention_heads: 8, num_key_value_heads: 4, num_hidden_layers: 5, vocab_size: 512, tie_word_embeddings: true });
  });

  it('refuses use_qalora when the layers pool over different groups, naming them', async () => {
    const { source } = await exportFromRun(run.plan, run.work, run.checkpoint, ops);
    await expect(writeExport(join(run.work, 'mixed-qalora'), exportFormat('peft-qalora'), source)).rejects.toThrow(PeftExportError);
    await expect(writeExport(join(run.work, 'mixed-qalora'), exportFormat('peft-qalora'), source))
      .rejects.toThrow(/one qalora_group_size for every layer, and this spec's adapters pool over 2 group sizes \(group 32: model\.layers\.0\.self_attn\.q_proj.*group 43: model\.layers\.0\.mlp\.down_proj/);
  });
});

describe('qalc export --format peft-qalora', () => {
  let qalora: Exported;
  beforeAll(async () => {
    qalora = await exported(await trainedRun({ group: 4, downGroup: 4 }), 'peft-qalora');
  }, 120_000);

  it('applied with PEFT\'s QA-LoRA pooling (mean × in/group), computes qalc\'s adapted layers', () => {
    const config = JSON.parse(readFileSync(join(qalora.dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ use_qalora: true, qalora_group_size: 4 });
    expect(peftAgainstQalc(qalora)).toBeLessThan(1e-5);
  });

  it('stores A at PEFT\'s scale: lora_A = Aᵀ / L for mean pooling', () => {
    const file = readSafetensors(join(qalora.dir, 'adapter_model.safetensors'));
    const adapter = qalora.source.adapters!.adapters.find((a) => a.module === 'model.layers.2.mlp.down_proj')!;
    const a = file.tensors.get('base_model.model.model.layers.2.mlp.down_proj.lora_A.weight')!;
    expect(a.shape).toEqual([2, 43]);
    expect(a.data[1 * 43 + 5]).toBeCloseTo(adapter.a[5 * 2 + 1]! / 43, 7);
  });
});
