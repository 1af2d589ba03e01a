// check reads the tokenizer: one qalc cannot read, or one of another vocabulary than the model's,
// is an error naming both files at the spec's line, not a failure later in train.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSpec, messages, SHARED, STORIES_BIN } from '../support/inline-spec.ts';

const QUANT = 'quant { bits = 4  group = 4 }';
const stories = (tokenizer: string) => `model {\n  checkpoint = "${STORIES_BIN}"\n  tokenizer = "${tokenizer}"\n}`;

describe('the tokenizer at check time', () => {
  it.each(['models/stories260K/tok512.bin', 'models/stories260K/tok512.model', 'models/stories260K-hf/tokenizer.json'])('accepts %s for stories260K', (file) => {
    expect(messages(compileSpec(QUANT, stories(`${SHARED}/${file}`)))).toEqual([]);
  });

  it('refuses a tokenizer of another vocabulary, naming both files', () => {
    const tokenizer = `${SHARED}/models/llama2-tokenizer/tokenizer.json`;
    expect(messages(compileSpec(QUANT, stories(tokenizer)))).toEqual([
      `4:15: error: tokenizer '${tokenizer}' has 32000 tokens but checkpoint '${STORIES_BIN}' has a vocabulary of 512 [hint: a model is trained with one tokenizer: use the one it came with]`,
    ]);
    expect(messages(compileSpec(QUANT, `model {\n  preset = llama2_7b\n  tokenizer = "${SHARED}/models/stories260K/tok512.model"\n}`))[0])
      .toContain('has 512 tokens but preset llama2_7b has a vocabulary of 32000');
  });

  it('reads the tokenizer.json of a Hugging Face checkpoint directory when the spec names none', () => {
    expect(messages(compileSpec(QUANT, `model { checkpoint = "${SHARED}/models/stories260K-hf" }`))).toEqual([]);
  });

  it('refuses a tokenizer it cannot read, with the reason (train used to die on it)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qalc-check-tokenizer-'));
    const garbage = join(dir, 'tok.model');
    writeFileSync(garbage, 'not a protobuf at all');
    const [message] = messages(compileSpec(QUANT, stories(garbage)));
    expect(message).toMatch(/^4:15: error: cannot read tokenizer '.*tok\.model': .*not a SentencePiece model/);
  });
});
