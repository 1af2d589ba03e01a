// End-to-end on the real stories260K model: the TypeScript forward pass must decode exactly the
// text llama2.c's run.c prints. The model files stay in ../shared, next to the repository.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CheckpointError, readLlama2cCheckpoint } from '../../src/model/llama2c-checkpoint.ts';
import { parseLlama2cTokenizer } from '../../src/model/llama2c-tokenizer.ts';
import { readTokenizer } from '../../src/model/read-tokenizer.ts';
import { TokenizerError } from '../../src/model/tokenizer.ts';
import { LlamaForward } from '../../src/model/llama-forward.ts';
import { generate } from '../../src/model/generate.ts';

const modelFile = (name: string) => fileURLToPath(new URL(`../../../shared/models/stories260K/${name}`, import.meta.url));
const checkpointPath = modelFile('stories260K.bin');
const checkpoint = readLlama2cCheckpoint(checkpointPath);
const tokenizer = parseLlama2cTokenizer(readFileSync(modelFile('tok512.bin')), 'tok512.bin');

describe('stories260K checkpoint', () => {
  it('reads every tensor with [out, in] shapes and both naming schemes', () => {
    const { arch, layers, tokenEmbedding, classifier } = checkpoint;
    expect(arch).toMatchObject({ dim: 64, hiddenDim: 172, layers: 5, heads: 8, kvHeads: 4, vocab: 512, context: 512, tiedEmbeddings: true });
    expect(tokenEmbedding.shape).toEqual([512, 64]);
    expect(classifier).toBe(tokenEmbedding);
    expect(layers).toHaveLength(5);
    expect(layers[4].wk.shape).toEqual([32, 64]);
    expect(layers[4].w1.shape).toEqual([172, 64]);
    expect(layers[4].w2.shape).toEqual([64, 172]);
    expect(layers[2].gate).toBe(layers[2].w1);
    expect(layers[2].down).toBe(layers[2].w2);
    expect(layers[2].up).toBe(layers[2].w3);
    expect(layers[2].q).toBe(checkpoint.tensors.get('layers.2.wq'));
    const weights = [...checkpoint.tensors.values()].reduce((n, t) => n + t.data.length, 0);
    expect(weights).toBe(260_032);
  });

  it('names the tensor a truncated file cuts short', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qalc-model-'));
    try {
      const bytes = readFileSync(checkpointPath);
      // Header + embedding (512·64) + rms_att (5·64) + wq of layers 0, 1 and half of layer 2's.
      const cut = 28 + 4 * (512 * 64 + 5 * 64 + 2 * 64 * 64 + 2048);
      const path = join(dir, 'cut.bin');
      writeFileSync(path, bytes.subarray(0, cut));
      expect(() => readLlama2cCheckpoint(path)).toThrow(CheckpointError);
      expect(() => readLlama2cCheckpoint(path)).toThrow(/cut\.bin: truncated .*tensor layers\.2\.wq/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tok512 tokenizer', () => {
  it.each([
    'Once upon a time, there was a little girl named Lily.',
    'She said, "I can\'t find it!"\nThen she smiled.',
    'Ünïcödé falls back to bytes: 猫 🐱',
  ])('round-trips %j', (text) => {
    const tokens = tokenizer.encode(text);
    expect(tokens[0]).toBe(1);
    expect(tokenizer.decode(tokens)).toBe(text);
  });

  it('merges by score into the pieces run.c produces', () => {
    // The dummy-prefix space joins the first word; a character missing from the vocabulary
    // becomes its UTF-8 bytes as <0xXX> tokens (byte + 3).
    const tokens = tokenizer.encode('Once upon a time', { bos: false });
    expect(tokens.map((t) => tokenizer.pieces[t]).join('')).toBe(' Once upon a time');
    expect(tokens.length).toBeLessThan(8);
    expect(tokenizer.encode('猫', { bos: false }).slice(-3)).toEqual([0xe7 + 3, 0x8c + 3, 0xab + 3]);
  });

  it('rejects a vocabulary of another size, naming both files', () => {
    expect(() => readTokenizer(modelFile('tok512.bin'), 500, 'stories260K.bin')).toThrow(TokenizerError);
    expect(() => readTokenizer(modelFile('tok512.bin'), 500, 'stories260K.bin')).toThrow(/tok512\.bin: the tokenizer has 512 tokens but stories260K\.bin has a vocabulary of 500/);
    // A file cut inside a piece is named as such, not read as a shorter vocabulary.
    const bytes = readFileSync(modelFile('tok512.bin'));
    expect(() => parseLlama2cTokenizer(bytes.subarray(0, bytes.length - 2), 'cut.bin')).toThrow(/cut\.bin: the file ends in the bytes of token 511/);
  });
});

describe('stories260K greedy decoding', () => {
  it('reproduces run.c: 256 steps from BOS, text identical to the reference', () => {
    const expected = readFileSync(modelFile('greedy_256_expected.txt'), 'utf8');
    const { text, tokens } = generate(new LlamaForward(checkpoint), tokenizer, { steps: 256, temperature: 0 });
    // run.c runs `steps` forward passes, BOS at position 0 being the first, so 256 steps print
    // 256 tokens; then it prints one '\n' of its own.
    expect(tokens).toHaveLength(256);
    expect(text + '\n').toBe(expected);
  });

  it('samples reproducibly from a seed', () => {
    const model = new LlamaForward(checkpoint);
    const a = generate(model, tokenizer, { steps: 64, temperature: 0.8, seed: 7 });
    const b = generate(model, tokenizer, { steps: 64, temperature: 0.8, seed: 7 });
    const c = generate(model, tokenizer, { steps: 64, temperature: 0.8, seed: 8 });
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });
});
