// check refuses, in a spec that trains, every setting qalc train would ignore or refuse later;
// the same settings in a spec that only compiles are kernels' business and pass.
import { describe, expect, it } from 'vitest';
import { compileSpec, messages, SHARED, STORIES_BIN } from '../support/inline-spec.ts';

const MODEL = `model {\n  checkpoint = "${STORIES_BIN}"\n  tokenizer = "${SHARED}/models/stories260K/tok512.bin"\n}`;
const TRAIN = 'train { data = "data.txt" }';
const errors = (body: string) => messages(compileSpec(body, MODEL)).filter((m) => m.includes('error:'));

describe('settings qalc train cannot do', () => {
  it.each([
    ['quant { bits = 4  group = 4  zero = fp16 }\nadapter { rank = 4 }', 'zero = fp16: qalc train and merge keep zeros as integers'],
    ['quant { bits = 4  group = 4 }\nadapter { rank = 4  kind = lora }', 'kind = lora: qalc train trains QA-LoRA adapters only'],
    ['quant { bits = 4  group = 4 }\nadapter { rank = 4  init = gaussian }', 'init = gaussian: qalc train initialises A with PEFT\'s kaiming_uniform only'],
    ['quant { bits = 4  group = 4 }\nadapter { rank = 4  dtype = bf16 }', 'dtype = bf16: qalc train keeps the adapters and their optimizer state in fp32'],
    ['quant { bits = 4  group = 4 }\nadapter { rank = 4 }\noverride proj lm_head { quantize = true  bits = 8 }', 'qalc train keeps lm_head frozen in float'],
  ])('%s', (body, expected) => {
    const refused = errors(`${body}\n${TRAIN}`);
    expect(refused.join('\n')).toContain(expected);
    expect(refused).toHaveLength(1);
    // Without a train block the spec only compiles, and the kernels do these.
    expect(errors(body)).toEqual([]);
  });

  it('refuses pad = zero for a device backend, and trains it on the cpu one', () => {
    const quant = 'quant { bits = 4  group = 16  pad = zero }\nadapter { rank = 4 }';
    expect(errors(`${quant}\ntrain { data = "d.txt"  backend = webgpu }`)).toEqual([
      expect.stringContaining('pad = zero: qalc train pads in-features on the cpu backend only so far, not webgpu (down of layers 0..4: 172 padded to 176)'),
    ]);
    expect(errors(`${quant}\n${TRAIN}`)).toEqual([]);
  });

  it('refuses optimizer = sgd', () => {
    expect(errors(`quant { bits = 4  group = 4 }\ntrain { data = "d.txt"  optimizer = sgd }`)).toEqual([
      expect.stringContaining('error: optimizer = sgd: qalc train has AdamW only [hint: optimizer = adamw (the default)]'),
    ]);
  });

  it('accepts what it trains: symmetric, zero = fp32, every scale dtype', () => {
    for (const quant of ['symmetric = true', 'zero = fp32', 'scale = bf16', 'scale = fp32']) {
      expect(errors(`quant { bits = 4  group = 4  ${quant} }\nadapter { rank = 4 }\n${TRAIN}`)).toEqual([]);
    }
  });
});
