// Reading a Hugging Face LLaMA directory: the same weights as the llama2.c file of the same model
// (q and k rows converted from Hugging Face's rotary order), transformers' own logits, and each
// bad input refused naming the file and the tensor.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate } from '../../src/model/generate.ts';
import { hfConfig } from '../../src/export/hf-dense.ts';
import type { MergedModel } from '../../src/export/merged-model.ts';
import { readHfArchitecture } from '../../src/model/hf-config.ts';
import { readHfCheckpoint } from '../../src/model/hf-checkpoint.ts';
import { LlamaForward } from '../../src/model/llama-forward.ts';
import { readLlama2cCheckpoint } from '../../src/model/llama2c-checkpoint.ts';
import { permuteToHf, unpermuteFromHf } from '../../src/model/rope-permutation.ts';
import { readTokenizer } from '../../src/model/read-tokenizer.ts';
import { fileURLToPath } from 'node:url';
import { refusal } from '../support/refusal.ts';

const shared = (path: string) => fileURLToPath(new URL(`../../../shared/${path}`, import.meta.url));
const HF = shared('models/stories260K-hf');
const work = mkdtempSync(join(tmpdir(), 'qalc-hf-'));

interface RawTensor { name: string; dtype: string; shape: number[]; bytes: Uint8Array }

/** The fixture's tensors as raw bytes, in file order. */
function fixtureTensors(): RawTensor[] {
  const bytes = readFileSync(join(HF, 'model.safetensors'));
  const length = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  return Object.entries(header).filter(([n]) => n !== '__metadata__')
    .sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])
    .map(([name, e]) => ({ name, dtype: e.dtype, shape: e.shape, bytes: bytes.subarray(8 + length + e.data_offsets[0], 8 + length + e.data_offsets[1]) }));
}

/** A safetensors file; `lie` edits the header after the offsets are laid out. */
function encode(tensors: RawTensor[], lie: (header: Record<string, { data_offsets: number[]; shape: number[]; dtype: string }>) => void = () => {}): Buffer {
  const header: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  lie(header);
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...tensors.map((t) => t.bytes)]);
}

/** A directory with the fixture's config.json and the given files. */
function directory(name: string, files: Record<string, Buffer | string>, config?: Record<string, unknown>): string {
  const dir = join(work, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  if (config) writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  else copyFileSync(join(HF, 'config.json'), join(dir, 'config.json'));
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
  return dir;
}

const config = JSON.parse(readFileSync(join(HF, 'config.json'), 'utf8')) as Record<string, unknown>;

describe('q and k rows between Hugging Face and llama2.c order', () => {
  it('permute then unpermute is the identity, both ways, and permuting moves rows', () => {
    const w = Float32Array.from({ length: 3 * 8 * 5 }, (_, i) => i * 0.5 - 7);
    expect(unpermuteFromHf(permuteToHf(w, 3, 5), 3, 5)).toEqual(w);
    expect(permuteToHf(unpermuteFromHf(w, 3, 5), 3, 5)).toEqual(w);
    // head 0, llama2.c rows 0..7 = pairs (0,1),(2,3),…: Hugging Face puts the pair's first halves first.
    const hf = permuteToHf(w, 3, 5);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((r) => hf[r * 5] / 2.5)).toEqual([0, 2, 4, 6, 1, 3, 5, 7].map((r) => (r * 5 * 0.5 - 7) / 2.5));
  });
});

describe('reading stories260K-hf', () => {
  const hf = readHfCheckpoint(HF);

  it('gives exactly the weights of the llama2.c file of the same model', () => {
    const llama2c = readLlama2cCheckpoint(shared('models/stories260K/stories260K.bin'));
    expect(hf.arch).toEqual(llama2c.arch);
    expect([...hf.tensors.keys()].sort()).toEqual([...llama2c.tensors.keys()].sort());
    for (const [name, t] of llama2c.tensors) {
      expect(hf.tensors.get(name)!.shape, name).toEqual(t.shape);
      expect(hf.tensors.get(name)!.data, name).toEqual(t.data);
    }
  });

  // transformers sums in float32, qalc in float64 rounded once: 3 of the 8192 logits (those near
  // 15, where a float32 step is 1e-6) differ by 1.2e-5, so the bound is 1e-5 relative past 1.
  it("matches transformers' float32 logits to 1e-5 (relative for logits beyond ±1)", () => {
    const reference = JSON.parse(readFileSync(join(HF, 'reference_logits.json'), 'utf8')) as { input_ids: number[]; logits_rows: number[][] };
    const model = new LlamaForward(hf);
    let worst = 0;
    reference.input_ids.forEach((token, pos) => {
      const logits = model.forward(token, pos);
      reference.logits_rows[pos].forEach((v, i) => { worst = Math.max(worst, Math.abs(logits[i] - v) / Math.max(1, Math.abs(v))); });
    });
    expect(reference.logits_rows).toHaveLength(16);
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  it.each(['tokenizer.json', '../stories260K/tok512.bin'])("reproduces transformers' greedy text (255 new tokens after BOS), decoded by %s", (tokenizerFile) => {
    const tokenizer = readTokenizer(join(HF, tokenizerFile), hf.arch.vocab);
    const text = generate(new LlamaForward(hf), tokenizer, { steps: 256 - 1 }).text;
    expect(text).toBe(readFileSync(join(HF, 'greedy_256_transformers.txt'), 'utf8'));
  });
});

// transformers' forward in numpy float64 (hf_llama_numpy.py, which matches reference_logits.json
// to 8e-6): the weights as stored, rotate-half RoPE, the config's θ and ε. qalc's logits under a
// config.json of rope_theta 1e6 and rms_norm_eps 1e-6 are its, and far from the default config's.
describe('stories260K-hf under rope_theta 1e6 and rms_norm_eps 1e-6', () => {
  const numpyLogits = (dir: string, ids: readonly number[]) => {
    const r = spawnSync('python3', [fileURLToPath(new URL('./hf_llama_numpy.py', import.meta.url)), dir, ...ids.map(String)], { encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`hf_llama_numpy.py failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as number[][];
  };
  const relative = (a: ArrayLike<number>, b: readonly number[]) => Math.max(...b.map((v, i) => Math.abs(a[i]! - v) / Math.max(1, Math.abs(v))));

  it("gives Hugging Face's logits for that config (≤ 1e-5), not the default config's", () => {
    const { input_ids: ids } = JSON.parse(readFileSync(join(HF, 'reference_logits.json'), 'utf8')) as { input_ids: number[] };
    const dir = directory('theta-1e6', { 'model.safetensors': readFileSync(join(HF, 'model.safetensors')) },
      { ...config, rms_norm_eps: 1e-6, rope_parameters: { rope_theta: 1e6, rope_type: 'default' } });
    const expected = numpyLogits(dir, ids), original = numpyLogits(HF, ids);
    const model = new LlamaForward(readHfCheckpoint(dir));
    let worst = 0, fromOriginal = 0;
    ids.forEach((token, pos) => {
      const logits = model.forward(token, pos);
      worst = Math.max(worst, relative(logits, expected[pos]!));
      fromOriginal = Math.max(fromOriginal, relative(logits, original[pos]!));
    });
    expect(worst).toBeLessThanOrEqual(1e-5);
    expect(fromOriginal).toBeGreaterThan(1e-2);
  });
});

describe('other layouts and dtypes', () => {
  const tensors = fixtureTensors();
  const reference = readHfCheckpoint(HF);

  it('reads shards listed in model.safetensors.index.json', () => {
    const half = Math.floor(tensors.length / 2);
    const shards = { 'model-00001-of-00002.safetensors': tensors.slice(0, half), 'model-00002-of-00002.safetensors': tensors.slice(half) };
    const weightMap = Object.fromEntries(Object.entries(shards).flatMap(([file, ts]) => ts.map((t) => [t.name, file])));
    const dir = directory('sharded', {
      ...Object.fromEntries(Object.entries(shards).map(([file, ts]) => [file, encode(ts)])),
      'model.safetensors.index.json': JSON.stringify({ metadata: {}, weight_map: weightMap }),
    });
    expect(readHfCheckpoint(dir).tensors).toEqual(reference.tensors);
  });

  it('reads BF16 and F16 weights, widened to float32', () => {
    const narrowed = (dtype: 'BF16' | 'F16') => tensors.map((t) => {
      const f = new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + t.bytes.length));
      const out = Buffer.alloc(f.length * 2);
      f.forEach((v, i) => {
        if (dtype === 'BF16') out.writeUInt16LE(Buffer.from(new Float32Array([v]).buffer).readUInt32LE(0) >>> 16, 2 * i);
        else out.writeUInt16LE(float16Bits(v), 2 * i);
      });
      return { ...t, dtype, bytes: out };
    });
    for (const dtype of ['BF16', 'F16'] as const) {
      const read = readHfCheckpoint(directory(dtype, { 'model.safetensors': encode(narrowed(dtype)) }));
      const tolerance = dtype === 'BF16' ? 2 ** -7 : 2 ** -11; // BF16 here is truncated, F16 rounded
      for (const [name, t] of reference.tensors) {
        const got = read.tensors.get(name)!.data;
        t.data.forEach((v, i) => expect(Math.abs(got[i] - v), `${dtype} ${name}[${i}]`).toBeLessThanOrEqual(Math.abs(v) * tolerance + 1e-7));
      }
    }
  });
});

/** Round-to-nearest float16 bits of a normal-range value (enough for these weights). */
function float16Bits(v: number): number {
  if (v === 0) return 0;
  const sign = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  if (e < -14) return sign | Math.round(a / 2 ** -24);
  const m = Math.round((a / 2 ** e - 1) * 1024);
  return m === 1024 ? sign | ((e + 16) << 10) : sign | ((e + 15) << 10) | m;
}

describe('bad input, each refused naming the file and the tensor', () => {
  const tensors = fixtureTensors();
  const good = encode(tensors);

  it('a truncated file', () => {
    const dir = directory('truncated', { 'model.safetensors': good.subarray(0, good.length - 100) });
    expect(refusal(() => readHfCheckpoint(dir))).toMatch(/model\.safetensors: truncated: tensor model\.norm\.weight ends at byte \d+, the file has \d+/);
  });

  it('a header longer than the file, and a header that is not JSON', () => {
    const long = Buffer.from(good);
    long.writeBigUInt64LE(BigInt(good.length));
    expect(refusal(() => readHfCheckpoint(directory('long', { 'model.safetensors': long })))).toMatch(/model\.safetensors: truncated: the header says/);
    const broken = Buffer.from(good);
    broken[9] = 0x7b; // a second '{'
    expect(refusal(() => readHfCheckpoint(directory('broken', { 'model.safetensors': broken })))).toMatch(/model\.safetensors: corrupt header/);
  });

  it('header offsets that lie: two tensors over the same bytes', () => {
    const [a, b] = [tensors[3], tensors[4]].filter((t) => t.bytes.length > 0);
    const lying = encode(tensors, (h) => { h[b.name].data_offsets = [...h[a.name].data_offsets]; h[b.name].shape = a.shape; });
    expect(refusal(() => readHfCheckpoint(directory('lying', { 'model.safetensors': lying })))).toMatch(/model\.safetensors: tensors .+ and .+ overlap in the file/);
  });

  it('dtype × shape not the byte length', () => {
    const wrong = encode(tensors, (h) => { h['model.norm.weight'].dtype = 'F16'; });
    expect(refusal(() => readHfCheckpoint(directory('dtype', { 'model.safetensors': wrong })))).toMatch(/model\.safetensors: tensor model\.norm\.weight: F16 \[64\] needs 128 bytes, its data_offsets \[\d+, \d+\] hold 256/);
  });

  it('a shape that disagrees with config.json', () => {
    const dir = directory('shape', { 'model.safetensors': good }, { ...config, intermediate_size: 171 });
    expect(refusal(() => readHfCheckpoint(dir))).toMatch(/tensor model\.layers\.0\.mlp\.gate_proj\.weight is \[172, 64\], config\.json makes it \[171, 64\]/);
  });

  it('a shard listed in the index but missing', () => {
    const dir = directory('missing-shard', {
      'model-00001-of-00002.safetensors': good,
      'model.safetensors.index.json': JSON.stringify({ weight_map: { 'model.embed_tokens.weight': 'model-00001-of-00002.safetensors', 'model.norm.weight': 'model-00002-of-00002.safetensors' } }),
    });
    expect(refusal(() => readHfCheckpoint(dir))).toMatch(/model\.safetensors\.index\.json: tensor model\.norm\.weight is in shard model-00002-of-00002\.safetensors, which is missing/);
  });

  it('a missing tensor, and a NaN weight', () => {
    expect(refusal(() => readHfCheckpoint(directory('no-norm', { 'model.safetensors': encode(tensors.filter((t) => t.name !== 'model.norm.weight')) }))))
      .toMatch(/missing tensor model\.norm\.weight/);
    const nan = tensors.map((t) => t.name === 'model.norm.weight' ? { ...t, bytes: Buffer.from(new Float32Array(64).fill(Number.NaN).buffer) } : t);
    expect(refusal(() => readHfCheckpoint(directory('nan', { 'model.safetensors': encode(nan) })))).toMatch(/model\.safetensors: tensor model\.norm\.weight \[64\] holds NaN at \[0\]/);
  });

  it('config.json settings qalc cannot run, each by name', () => {
    const refused = (name: string, change: Record<string, unknown>) => refusal(() => readHfCheckpoint(directory(name, { 'model.safetensors': good }, { ...config, ...change })));
    expect(refused('qwen', { model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'] })).toMatch(/config\.json: model_type "qwen2": qalc reads LLaMA models/);
    expect(refused('gelu', { hidden_act: 'gelu' })).toMatch(/hidden_act "gelu"/);
    expect(refused('scaling', { rope_scaling: { type: 'linear', factor: 2 } })).toMatch(/rope_scaling .* is not supported/);
    expect(refused('theta-negative', { rope_parameters: undefined, rope_theta: -1 })).toMatch(/config\.json: rope_theta must be a positive number, found -1/);
    expect(refused('theta-text', { rope_parameters: { rope_theta: '1e6', rope_type: 'default' } })).toMatch(/rope_theta must be a positive number, found "1e6"/);
    expect(refused('theta-both', { rope_theta: 5e5 })).toMatch(/rope_theta is 500000 but rope_parameters\.rope_theta is 10000: which one is the model's\?/);
    expect(refused('eps-zero', { rms_norm_eps: 0 })).toMatch(/rms_norm_eps must be a positive number, found 0/);
    expect(refused('rope-type', { rope_parameters: { rope_theta: 5e5, rope_type: 'llama3' } })).toMatch(/rope_parameters\.rope_type "llama3" is not supported/);
    expect(refused('head-dim', { head_dim: 16 })).toMatch(/"head_dim" is 16/);
  });

  it('hf-dense\'s config.json reads back as the architecture it was written from, θ and ε included', () => {
    const arch = { ...readHfCheckpoint(HF).arch, ropeTheta: 5e5, rmsNormEps: 1e-6 };
    const dir = directory('written-config', {}, hfConfig({ arch } as MergedModel));
    expect(readHfArchitecture(dir)).toEqual(arch);
  });

  it('rope_theta at the top level or in rope_parameters, and rms_norm_eps, are the model\'s; absent, LLaMA\'s', () => {
    const { rope_parameters: _, rms_norm_eps: _eps, ...old } = config;
    const arch = (name: string, json: Record<string, unknown>) => readHfCheckpoint(directory(name, { 'model.safetensors': good }, json)).arch;
    expect(arch('old-config', { ...old, rope_theta: 1e6, rms_norm_eps: 1e-6 })).toMatchObject({ dim: 64, ropeTheta: 1e6, rmsNormEps: 1e-6 });
    expect(arch('new-config', { ...config, rope_parameters: { rope_theta: 5e5, rope_type: 'default' } })).toMatchObject({ ropeTheta: 5e5, rmsNormEps: 1e-5 });
    expect(arch('no-theta', old)).toMatchObject({ dim: 64, ropeTheta: 10000, rmsNormEps: 1e-5 });
  });
});
