// Reading GPTQ v1 checkpoints: directories made from stories260K-hf by test/model/gptq_fixture.py,
// which quantizes and packs with AutoGPTQ's own loops in numpy (not qalc's code). qalc must find
// exactly the codes, zeros and fp16 scales the script packed, in llama2.c's rotary order, and
// refuse each damaged or inconsistent directory naming the file and the tensor.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readGptqCheckpoint } from '../../src/model/gptq-checkpoint.ts';
import { readHfCheckpoint } from '../../src/model/hf-checkpoint.ts';
import { inferCheckpointFormat } from '../../src/model/read-architecture.ts';
import { openSafetensors } from '../../src/export/safetensors.ts';
import type { Bits, QuantizedWeight } from '../../src/quant/quantized-weight.ts';
import { makeGptqFixture, STORIES260K_HF } from '../support/gptq-fixture.ts';
import { refusal } from '../support/refusal.ts';
import { createRng } from '../../src/reference/random.ts';

const HF = STORIES260K_HF;
const work = mkdtempSync(join(tmpdir(), 'qalc-gptq-'));

const ATTENTION = { q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj' } as const;

/** What the script packed, in Hugging Face order: codes [K, N], zeros and scales [L, N]. */
function expected(dir: string, prefix: string) {
  const file = openSafetensors(join(dir, 'expected.safetensors'));
  try {
    const entry = file.entries.get(`${prefix}.codes`)!;
    const bytes = readFileSync(join(dir, 'expected.safetensors')).subarray(entry.start, entry.end);
    return { codes: Uint8Array.from(bytes), shape: entry.shape, zeros: file.readInt32(`${prefix}.zeros`), scales: file.readFloat32(`${prefix}.scales`) };
  } finally {
    file.close();
  }
}

/** Hugging Face column of llama2.c column o (the rotary permutation, written out independently). */
function hfColumn(o: number, headSize: number): number {
  const head = Math.floor(o / headSize);
  const within = o % headSize;
  return head * headSize + (within % 2) * (headSize / 2) + Math.floor(within / 2);
}

function expectSameWeight(read: QuantizedWeight, dir: string, prefix: string, headSize: number | null) {
  const want = expected(dir, prefix);
  const [K, N] = want.shape as [number, number];
  expect([read.inFeatures, read.outFeatures]).toEqual([K, N]);
  const column = (o: number) => (headSize === null ? o : hfColumn(o, headSize));
  for (let o = 0; o < N; o++) {
    for (let i = 0; i < K; i++) if (read.q[i * N + o] !== want.codes[i * N + column(o)]) throw new Error(`${prefix}: code [${i}, ${o}] is ${read.q[i * N + o]}, the script packed ${want.codes[i * N + column(o)]}`);
    for (let k = 0; k < K / read.groupSize; k++) {
      expect(read.zeros[k * N + o], `${prefix} zero [${k}, ${o}]`).toBe(want.zeros[k * N + column(o)]);
      expect(read.scales[k * N + o], `${prefix} scale [${k}, ${o}]`).toBe(want.scales[k * N + column(o)]);
    }
  }
}

const fixtures: Record<string, string> = {};

beforeAll(() => {
  for (const bits of [2, 3, 4, 8] as Bits[]) fixtures[`b${bits}`] = makeGptqFixture(join(work, `b${bits}`), ['--bits', String(bits), '--group', '16']);
  fixtures.symPerColumn = makeGptqFixture(join(work, 'sym'), ['--bits', '3', '--group', '-1', '--sym', '--config-only']);
  fixtures.descAct = makeGptqFixture(join(work, 'desc-act'), ['--bits', '4', '--group', '16', '--desc-act']);
}, 120_000);

describe('GPTQ v1 directories made by AutoGPTQ\'s packing', () => {
  it.each([2, 3, 4, 8])('%i bits, group 16: exactly the codes, zeros and fp16 scales packed, q and k in llama2.c order', (bits) => {
    const dir = fixtures[`b${bits}`]!;
    expect(inferCheckpointFormat(dir)).toBe('gptq');
    const read = readGptqCheckpoint(dir);
    expect(read.quantization).toMatchObject({ bits, groupSize: 16, symmetric: false, checkpointFormat: 'gptq' });
    expect(read.quantized.size).toBe(5 * 4);
    for (let l = 0; l < 5; l++) {
      for (const [p, hf] of Object.entries(ATTENTION)) {
        const weight = read.quantized.get(`layers.${l}.${p}`)!;
        expect(weight.bits).toBe(bits);
        expectSameWeight(weight, dir, `model.layers.${l}.${hf}`, p === 'q' || p === 'k' ? 8 : null);
      }
    }
  });

  it('symmetric, group_size -1 (one group per column), quantization_config in config.json only', () => {
    const dir = fixtures.symPerColumn!;
    expect(inferCheckpointFormat(dir)).toBe('gptq');
    const read = readGptqCheckpoint(dir);
    expect(read.quantization).toMatchObject({ bits: 3, groupSize: -1, symmetric: true });
    const q = read.quantized.get('layers.2.q')!;
    expect(q.groupSize).toBe(64);
    expect(new Set(q.zeros)).toEqual(new Set([4]));
    expectSameWeight(q, dir, 'model.layers.2.self_attn.q_proj', 8);
  });

  it('the dense weights are the dequantized codes, and the layers left unquantized read as floats', () => {
    const dir = fixtures.b4!;
    const read = readGptqCheckpoint(dir);
    const hf = readHfCheckpoint(HF);
    for (const name of ['token_embedding', 'rms_final', 'layers.3.w1', 'layers.3.w2', 'layers.3.rms_att']) {
      expect(read.tensors.get(name)!.data, name).toEqual(hf.tensors.get(name)!.data);
    }
    // Ŵ = s·(q − z) in llama2.c order is close to the float weight it was quantized from.
    const dequantized = read.layers[1]!.wq.data;
    const original = hf.layers[1]!.wq.data;
    let worst = 0;
    for (let i = 0; i < original.length; i++) worst = Math.max(worst, Math.abs(dequantized[i]! - original[i]!));
    const range = Math.max(...Array.from(original, Math.abs));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(range / 15);
  });
});

/** A copy of a fixture to damage. */
function copy(from: string, name: string): string {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  cpSync(from, dir, { recursive: true });
  return dir;
}

function editJson(path: string, edit: (json: Record<string, unknown>) => void) {
  const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(json);
  writeFileSync(path, JSON.stringify(json));
}

/** Rewrites one I32 value of a tensor in place. */
function patchInt32(dir: string, tensor: string, index: number, value: number) {
  const path = join(dir, 'model.safetensors');
  const reader = openSafetensors(path);
  const entry = reader.entries.get(tensor)!;
  reader.close();
  const bytes = readFileSync(path);
  bytes.writeInt32LE(value, entry.start + 4 * index);
  writeFileSync(path, bytes);
}

describe('bad GPTQ directories, each refused naming the file and the tensor', () => {
  it('a truncated model.safetensors', () => {
    const dir = copy(fixtures.b4!, 'truncated');
    const path = join(dir, 'model.safetensors');
    writeFileSync(path, readFileSync(path).subarray(0, 400_000));
    expect(refusal(() => readGptqCheckpoint(dir))).toMatch(/model\.safetensors: truncated: tensor \S+ ends at byte \d+, the file has 400000/);
  });

  it('bits that disagree with the packed shape', () => {
    const dir = copy(fixtures.b4!, 'bits');
    editJson(join(dir, 'quantize_config.json'), (j) => { j.bits = 2; });
    editJson(join(dir, 'config.json'), (j) => { (j.quantization_config as Record<string, unknown>).bits = 2; });
    expect(refusal(() => readGptqCheckpoint(dir))).toMatch(/model\.safetensors: tensor model\.layers\.0\.self_attn\.q_proj\.qweight is \[8, 64\]: 2-bit codes of 64 inputs take \[4, 64\]; its shape is that of 4-bit codes, but .*quantize_config\.json says bits = 2/);
  });

  it('quantize_config.json and config.json disagreeing', () => {
    const dir = copy(fixtures.b4!, 'disagree');
    editJson(join(dir, 'quantize_config.json'), (j) => { j.bits = 8; });
    expect(refusal(() => readGptqCheckpoint(dir))).toMatch(/quantize_config\.json: "bits" is 8 here but 4 in config\.json's quantization_config/);
  });

  it('a g_idx that is not ⌊i/g⌋', () => {
    const dir = copy(fixtures.b4!, 'g-idx');
    patchInt32(dir, 'model.layers.2.self_attn.v_proj.g_idx', 17, 0);
    expect(refusal(() => readGptqCheckpoint(dir))).toMatch(/model\.safetensors: tensor model\.layers\.2\.self_attn\.v_proj\.g_idx\[17\] is 0, expected ⌊17\/16⌋ = 1/);
  });

  it('desc_act: true', () => {
    expect(refusal(() => readGptqCheckpoint(fixtures.descAct!))).toMatch(/quantize_config\.json: desc_act: true: the checkpoint's groups are permuted by g_idx/);
  });

  it('no quantize config at all', () => {
    const dir = copy(fixtures.b4!, 'no-config');
    rmSync(join(dir, 'quantize_config.json'));
    editJson(join(dir, 'config.json'), (j) => { delete j.quantization_config; });
    expect(inferCheckpointFormat(dir)).toBe('hf');
    expect(refusal(() => readHfCheckpoint(dir))).toMatch(/model\.safetensors: tensor model\.layers\.0\.self_attn\.q_proj\.qweight is GPTQ-quantized, but .* has no quantize_config\.json and no quantization_config in config\.json/);
    expect(refusal(() => readGptqCheckpoint(dir))).toMatch(/not a GPTQ checkpoint: no quantize_config\.json and no quantization_config in config\.json/);
  });

  it('scales and qzeros of the wrong shape, a missing qzeros, a bias, another method', () => {
    const withConfig = (name: string, edit: (q: Record<string, unknown>) => void) => {
      const dir = copy(fixtures.b4!, name);
      editJson(join(dir, 'quantize_config.json'), edit);
      editJson(join(dir, 'config.json'), (j) => edit(j.quantization_config as Record<string, unknown>));
      return dir;
    };
    // group 32 makes scales [2, 64] where the file has [4, 64]
    expect(refusal(() => readGptqCheckpoint(withConfig('group', (q) => { q.group_size = 32; })))).toMatch(/tensor model\.layers\.0\.self_attn\.q_proj\.qzeros is \[4, 8\], config\.json makes it \[2, 8\]/);
    expect(refusal(() => readGptqCheckpoint(withConfig('bits-9', (q) => { q.bits = 5; })))).toMatch(/"bits" must be one of 2, 3, 4, 8, found 5/);
    expect(refusal(() => readGptqCheckpoint(withConfig('awq', (q) => { q.quant_method = 'awq'; })))).toMatch(/quant_method "awq": qalc reads GPTQ checkpoints only/);
    expect(refusal(() => readGptqCheckpoint(withConfig('v3', (q) => { q.checkpoint_format = 'marlin'; })))).toMatch(/checkpoint_format "marlin"/);
    const unlisted = withConfig('unlisted', (q) => { q.modules_in_block_to_quantize = [['self_attn.q_proj']]; });
    expect(refusal(() => readGptqCheckpoint(unlisted))).toMatch(/tensor model\.layers\.0\.self_attn\.k_proj\.qweight: .*modules_in_block_to_quantize does not list this module/);
  });

  it('qalc generate reads a GPTQ directory', () => {
    const r = spawnSync(process.execPath, ['src/cli/qalc.mjs', 'generate', fixtures.b8!, '--tokenizer', resolve('../shared/models/stories260K/tok512.bin'), '--steps', '40'], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/generated 40 tokens/);
    expect(r.status).toBe(0);
    // 8-bit codes: the greedy text starts as the float model's (transformers' reference text).
    expect(r.stdout.slice(0, 60)).toBe(readFileSync(join(HF, 'greedy_256_transformers.txt'), 'utf8').slice(0, 60));
  });

  it('through the CLI: exit 1 and the message, never a stack trace', () => {
    const dir = copy(fixtures.b4!, 'cli');
    patchInt32(dir, 'model.layers.0.self_attn.o_proj.g_idx', 3, 9);
    const r = spawnSync(process.execPath, ['src/cli/qalc.mjs', 'generate', dir, '--tokenizer', resolve('../shared/models/stories260K/tok512.bin'), '--steps', '4'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/model\.safetensors: tensor model\.layers\.0\.self_attn\.o_proj\.g_idx\[3\] is 9, expected ⌊3\/16⌋ = 0/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('fuzzed GPTQ tensors', () => {
  // Mutations aimed at the GPTQ entries of the header (shape digits, dtypes, offsets) and at the
  // packed words themselves: each read succeeds or is refused as an input error naming a file.
  it('are read or refused by name, never a crash', () => {
    const source = join(fixtures.b3!, 'model.safetensors');
    const bytes = readFileSync(source);
    const headerEnd = 8 + Number(bytes.readBigUInt64LE(0));
    const header = bytes.subarray(8, headerEnd).toString('latin1');
    const targets: number[] = [];
    for (const m of header.matchAll(/"(I32|F16)"|\[\d+(, ?\d+)?\]/g)) for (let i = 0; i < m[0].length; i++) targets.push(8 + m.index! + i);
    const dir = copy(fixtures.b3!, 'fuzz');
    const rng = createRng(3);
    const outcomes = { read: 0, refused: 0 };
    for (let trial = 0; trial < 60; trial++) {
      const mutated = Buffer.from(bytes);
      if (trial % 3 === 2) {
        // a packed word of some qweight or qzeros: any bits are codes, read without complaint
        for (let e = 0; e < 4; e++) mutated[headerEnd + rng.int(mutated.length - headerEnd)] = rng.int(256);
      } else {
        for (let e = 0; e < 1 + rng.int(2); e++) mutated[targets[rng.int(targets.length)]!] = '0123456789[],"IF'.charCodeAt(rng.int(17));
      }
      writeFileSync(join(dir, 'model.safetensors'), mutated);
      try {
        readGptqCheckpoint(dir);
        outcomes.read++;
      } catch (e) {
        expect(['CheckpointError', 'SafetensorsError'], (e as Error).stack).toContain((e as Error).name);
        expect((e as Error).message).toMatch(new RegExp(`^${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
        outcomes.refused++;
      }
    }
    expect(outcomes.refused).toBeGreaterThan(20);
  });
});
