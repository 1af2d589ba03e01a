// The native decoder on the real stories260K model: run.c's greedy text exactly (the same
// reference file test/model uses), and LlamaForward's logits bit for bit under 1 and 2 threads.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generate } from '../../../src/model/generate.ts';
import { LlamaForward } from '../../../src/model/llama-forward.ts';
import { readLlama2cCheckpoint } from '../../../src/model/llama2c-checkpoint.ts';
import { readTokenizer } from '../../../src/model/read-tokenizer.ts';
import { NativeLlamaForward } from '../../../src/runtime/cpu/native-llama-forward.ts';
import { sharedFile, STORIES260K, TOK512 } from '../../train/tiny-model.ts';
import { nativeBuilt, withOneAndTwoThreads } from './native-support.ts';

const checkpoint = readLlama2cCheckpoint(STORIES260K);
const tokenizer = readTokenizer(TOK512, checkpoint.arch.vocab);

describe.skipIf(!nativeBuilt)('native stories260K decoding', () => {
  it('reproduces run.c: 256 greedy steps from BOS, text identical to the reference', () => {
    const expected = readFileSync(sharedFile('models/stories260K/greedy_256_expected.txt'), 'utf8');
    const { text, tokens } = generate(new NativeLlamaForward(checkpoint), tokenizer, { steps: 256, temperature: 0 });
    expect(tokens).toHaveLength(256);
    expect(text + '\n').toBe(expected);
  });

  it('gives LlamaForward\'s logits bit for bit at every position, with 1 and 2 threads', () => {
    const reference = new LlamaForward(checkpoint);
    const tokens = tokenizer.encode('Once upon a time, there was a little dog named Max. He liked to run in the big green park.');
    const expected = tokens.map((token, pos) => Float32Array.from(reference.forward(token, pos)));
    const [one, two] = withOneAndTwoThreads(() => {
      const model = new NativeLlamaForward(checkpoint);
      return tokens.map((token, pos) => Float32Array.from(model.forward(token, pos)));
    });
    expect(one).toEqual(expected);
    expect(two).toEqual(expected);
  });

  it('refuses a token or position outside the model', () => {
    const model = new NativeLlamaForward(checkpoint);
    expect(() => model.forward(512, 0)).toThrow(/token 512 is outside the vocabulary of 512/);
    expect(() => model.forward(1, 512)).toThrow(/position 512 is outside the context of 512/);
  });
});
