import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { frontEnd } from '../../src/compile.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileInline, compileSpec, messages, STORIES_BIN } from '../support/inline-spec.ts';
import { writeLlama2c } from '../support/llama2c-file.ts';

const QUANT = 'quant { bits = 4  group = 32 }';

function errors(body: string, model?: string): string[] {
  return messages(compileSpec(body, model)).filter((m) => m.includes('error:'));
}

describe('settings', () => {
  it('accepts the paper configuration without a word', () => {
    const r = compileSpec(`${QUANT}\nadapter { rank = 64  alpha = 16 }`);
    expect(messages(r)).toEqual([]);
    expect(r.plan?.layers).toHaveLength(32 * 7);
  });

  it.each([
    ['quant { bits = 5  group = 32 }', 'bits must be 2, 3, 4 or 8, not 5'],
    ['quant { bits = 4  group = 0 }', 'group must be at least 1, not 0'],
    ['quant { bits = 4.5  group = 32 }', 'bits must be an integer'],
    ['quant { bits = 4  group = 32  symmetric = yes }', 'symmetric must be true or false'],
    ['quant { bits = 4  group = 32  scale = "fp16" }', 'scale must be'],
    [`${QUANT}\nadapter { rank = 8  alpha = -1 }`, 'alpha must be greater than 0, not -1'],
    [`${QUANT}\nadapter { rank = 8  dropout = 1 }`, 'dropout must be less than 1, not 1'],
    [`${QUANT}\nadapter { rank = 0 }`, 'rank must be at least 1, not 0'],
    [`${QUANT}\nadapter { rank = 8  projections = [] }`, 'projections must list at least one'],
    [`${QUANT}\nadapter { rank = 8  projections = [q, q] }`, "'q' is listed twice"],
    [`${QUANT}\ntrain { data = data.txt }`, 'data must be a path in quotes'],
    [`${QUANT}\ntrain { lr = 1e400 }`, 'not a finite number'],
    [`${QUANT}\ntarget cuda { arch = [sm_75] }`, "'sm_75' is not a value of arch"],
    [`${QUANT}\ntrain { recompute = all }`, "'all' is not a value of recompute: expected 'none', 'blocks', 'mlp', 'projections' or an integer"],
    [`${QUANT}\ntrain { recompute = bloks }`, "did you mean 'blocks'?"],
    [`${QUANT}\ntrain { recompute = "blocks" }`, 'recompute must be \'none\', \'blocks\', \'mlp\', \'projections\' or an integer, not a string "blocks" [hint: write it without quotes: recompute = blocks]'],
    [`${QUANT}\ntrain { recompute = 2.5 }`, "recompute must be 'none', 'blocks', 'mlp', 'projections' or an integer, not a number 2.5"],
    [`${QUANT}\ntrain { recompute = -1 }`, 'recompute must be at least 0, not -1'],
    [`${QUANT}\ntrain { recompute = 33 }`, 'recompute = 33 blocks, but the model has 32 [hint: recompute = blocks (every block) or a number up to 32]'],
    [`${QUANT}\ntarget metal { }`, "unknown target 'metal'"],
  ])('%s → %s', (body, expected) => {
    expect(errors(body).join('\n')).toContain(expected);
  });

  it('takes recompute as none (the default), blocks, or a number of blocks up to the model\'s', () => {
    const recompute = (train: string) => {
      const r = compileSpec(`${QUANT}\ntrain { ${train} }`);
      expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      return r.plan?.train?.recompute;
    };
    expect([recompute('seq_len = 256'), recompute('recompute = none'), recompute('recompute = blocks'), recompute('recompute = 0'), recompute('recompute = 32')]).toEqual(['none', 'none', 'blocks', 0, 32]);
  });

  it('names unknown settings with a suggestion', () => {
    expect(errors('quant { bits = 4  grup = 32  group = 32 }')).toEqual([
      "3:19: error: unknown setting 'grup' in the quant block [hint: did you mean 'group'?]",
    ]);
  });

  it('refuses a key set twice in one block, pointing at the second', () => {
    expect(errors('quant { bits = 4  group = 32  bits = 8 }')).toEqual([
      '3:31: error: bits is set twice in the quant block [hint: the first is on line 3; keep one]',
    ]);
  });

  it('refuses a second block of a kind, naming the first', () => {
    expect(errors(`${QUANT}\nquant { bits = 8  group = 32 }`).join('\n')).toContain('a spec has one quant block; the first is at line 3');
  });

  it('says what is missing from an empty file', () => {
    const r = compileInline({ 'e.qal': '# nothing here\n' });
    expect(messages(r).join('\n')).toMatch(/no name[\s\S]*no model block[\s\S]*no quant block/);
  });

  it('requires bits, group and an adapter rank', () => {
    expect(errors('quant { bits = 4 }\nadapter { alpha = 16 }').join('\n')).toMatch(/must set group[\s\S]*must set rank/);
  });

  it('says a wrong value once, not also that the block lacks the key', () => {
    expect(errors('quant { bits = 5  group = 32 }')).toEqual(['3:16: error: bits must be 2, 3, 4 or 8, not 5']);
    expect(errors('quant { bits = 4  group = 0 }\nadapter { rank = -1 }')).toEqual([
      '3:27: error: group must be at least 1, not 0',
      '4:18: error: rank must be at least 1, not -1',
    ]);
  });
});

describe('the model', () => {
  it('reads shapes from a llama2.c checkpoint without reading the weights', () => {
    const r = compileSpec(`quant { bits = 4  group = 16 }\noverride proj down { group = 43 }`, `model { checkpoint = "${STORIES_BIN}" }`);
    expect(messages(r)).toEqual([]);
    expect(r.plan?.model.architecture).toMatchObject({ dim: 64, hiddenDim: 172, layers: 5, heads: 8, kvHeads: 4, vocab: 512, context: 512 });
  });

  it('says what to do when 32 does not divide stories260K\'s hidden size of 172', () => {
    const r = compileSpec(QUANT, `model { checkpoint = "${STORIES_BIN}" }`);
    const [problem] = r.diagnostics;
    expect(problem?.message).toBe('group = 32 does not divide the in-features (172) of down of layers 0..4');
    expect(problem?.hint).toBe('use a group that divides 172 (2, 4, 43, 86 or 172), e.g. `override proj down { group = 43 }`, or set `pad = zero` to pad the in-features to 192');
  });

  it('pads in-features when asked, never silently', () => {
    const r = compileSpec(`quant { bits = 4  group = 32  pad = zero }`, `model { checkpoint = "${STORIES_BIN}" }`);
    const down = r.plan!.layers.find((l) => l.name === 'layers.0.down')!;
    expect(down.quant).toMatchObject({ paddedInFeatures: 192, groups: 6, pad: 'zero' });
  });

  it('reports every written field that disagrees with the checkpoint', () => {
    const r = compileSpec('quant { bits = 4  group = 4 }', `model { checkpoint = "${STORIES_BIN}"  dim = 64  hidden_dim = 256  layers = 6 }`);
    // Columns depend on where the checkout is; the messages and their order do not.
    expect(r.diagnostics.map((d) => `${d.message} [hint: ${d.hint}]`)).toEqual([
      'hidden_dim = 256 disagrees with the checkpoint, which has hidden_dim = 172 [hint: remove hidden_dim or make it 172]',
      'layers = 6 disagrees with the checkpoint, which has layers = 5 [hint: remove layers or make it 5]',
    ]);
    expect(r.diagnostics[0]!.span.col).toBeLessThan(r.diagnostics[1]!.span.col);
  });

  it('names a missing or truncated checkpoint', () => {
    expect(errors(QUANT, 'model { checkpoint = "nope.bin" }').join('\n')).toContain("cannot read checkpoint 'nope.bin': no such file or directory");
  });

  it('refuses an odd head size, which RoPE cannot rotate, whatever says the shapes', () => {
    const arch = 'dim = 30  hidden_dim = 64  layers = 2  heads = 2  vocab = 100  context = 16';
    expect(errors('quant { bits = 4  group = 2 }', `model { ${arch} }`)).toEqual([
      '2:56: error: the head size is odd: dim = 30 / heads = 2 = 15, and RoPE rotates pairs of dimensions [hint: choose heads so that dim / heads is even]',
    ]);
    const checkpoint = writeLlama2c(join(mkdtempSync(join(tmpdir(), 'qalc-odd-')), 'odd.bin'),
      { dim: 30, hiddenDim: 64, layers: 1, heads: 2, kvHeads: 2, vocab: 100, context: 16, tiedEmbeddings: true, ropeTheta: 10000, rmsNormEps: 1e-5 }, 20_000);
    const fromFile = errors('quant { bits = 4  group = 2 }', `model { checkpoint = "${checkpoint}" }`);
    expect(fromFile).toHaveLength(1);
    expect(fromFile[0]).toContain(`the checkpoint's head size is odd: dim = 30 / heads = 2 = 15, and RoPE rotates pairs of dimensions`);
  });

  it('accepts a written-out architecture and checks heads divide', () => {
    const arch = 'dim = 256  hidden_dim = 512  layers = 2  heads = 6  vocab = 1000  context = 128';
    expect(errors(QUANT, `model { ${arch} }`).join('\n')).toContain('heads = 6 does not divide dim = 256');
    expect(errors(QUANT, 'model { dim = 256 }').join('\n')).toContain('missing: hidden_dim, layers, heads, vocab, context');
  });

  it('knows presets however they are spelled', () => {
    for (const preset of ['llama2_7b', 'llama2-7b', '"LLaMA2-7B"']) expect(errors(QUANT, `model { preset = ${preset} }`)).toEqual([]);
    expect(errors(QUANT, 'model { preset = llama2_7 }').join('\n')).toContain("unknown preset 'llama2_7' [hint: did you mean 'llama2_7b'?]");
  });
});

describe('layer rules', () => {
  it('keeps the QA-LoRA rank within [1, min(K/g, N)]', () => {
    expect(errors(`${QUANT}\nadapter { rank = 129 }`)).toEqual([
      "4:11: error: rank = 129 is larger than 128 = min(in-features / group, out-features) = min(4096/32, 4096) for q, k, v, o, gate, up of layers 0..31 [hint: QA-LoRA's A has one row per group: use rank ≤ 128, or a smaller group]",
    ]);
    expect(errors(`${QUANT}\nadapter { rank = 128 }`)).toEqual([]);
    // Plain LoRA is bounded by K itself.
    expect(errors(`${QUANT}\nadapter { kind = lora  rank = 129 }`)).toEqual([]);
  });

  it('refuses act_order with QA-LoRA, and GPTQ settings under rtn', () => {
    expect(errors(`quant { bits = 4  group = 32  method = gptq  act_order = true }\nadapter { rank = 8 }`).join('\n')).toContain('act_order permutes the groups');
    // Plain LoRA does not pool, but qalc's GPTQ does not implement act-order either.
    expect(errors(`quant { bits = 4  group = 32  method = gptq  act_order = true }\nadapter { kind = lora  rank = 8 }`).join('\n')).toContain('act-order is not implemented');
    expect(errors(`quant { bits = 4  group = 32  method = gptq  act_order = true }`).join('\n')).toContain('act-order is not implemented');
    expect(errors(`quant { bits = 4  group = 32  damp = 0.1 }`).join('\n')).toContain('damp applies to method = gptq');
  });

  it('refuses pooling on plain LoRA and QA-LoRA on an unquantized layer', () => {
    expect(errors(`${QUANT}\nadapter { kind = lora  rank = 8  pooling = sum }`).join('\n')).toContain('pooling applies to kind = qalora');
    expect(errors(`${QUANT}\nadapter { rank = 8 }\noverride layers 0 proj q { quantize = false }`).join('\n'))
      .toContain('QA-LoRA pools its input by quantization group, but q of layer 0 is not quantized');
  });

  it('refuses conflicting overrides of the same layers, and warns about shadowed ones', () => {
    expect(errors(`${QUANT}\noverride layers 1 { bits = 2 }\noverride layers 1 { bits = 8 }`).join('\n'))
      .toContain('conflicting overrides: bits = 8 here, bits = 2 for the same layers at line 4');
    const shadowed = messages(compileSpec(`${QUANT}\noverride layers 1..2 { bits = 2 }\noverride layers all { bits = 8 }`));
    expect(shadowed.join('\n')).toContain('bits here has no effect: every layer this override selects takes bits from a later override (line 5)');
  });

  it('warns once per selector about layers the model does not have, however many are listed', () => {
    const indices = Array.from({ length: 100_000 }, (_, i) => i).join(', ');
    const r = compileSpec(`${QUANT}\noverride layers 30..40, 50, ${indices} { bits = 8 }`);
    expect(messages(r)).toEqual([
      '4:17: warning: layers 32..40, 50, 32 and 99,967 more match nothing: the model has 32 layers (0..31)',
    ]);
    expect(messages(compileSpec(`${QUANT}\noverride layers 40..47, 60 { bits = 8 }`))).toEqual([
      '4:17: warning: layers 40..47 and 60 match nothing: the model has 32 layers (0..31)',
    ]);
  });

  it('warns about settings that cannot apply', () => {
    const r = messages(compileSpec(`${QUANT}\noverride layers 0 { rank = 4 }`));
    expect(r.join('\n')).toContain('rank has no effect on q, k, v, o, gate, up, down of layer 0: they have no adapter');
  });

  it('names unknown projections and things that are not linear layers', () => {
    expect(errors(`${QUANT}\noverride proj gte { bits = 2 }`).join('\n')).toContain("unknown projection 'gte'");
    expect(errors(`${QUANT}\noverride proj embed { bits = 2 }`).join('\n')).toContain("'embed' is not a linear layer");
    expect(errors(`${QUANT}\noverride layers 0 proj lm_head { quantize = true }`).join('\n')).toContain('lm_head is not inside a block');
  });
});

describe('includes', () => {
  it('splices included statements in place, with errors in the included file', () => {
    const r = compileInline({
      'main.qal': 'spec m\ninclude "base.qal"\nadapter { rank = 8 }',
      'base.qal': 'model { preset = llama_7b }\nquant { bits = 4  group = 32  sclae = fp16 }',
    });
    expect(r.diagnostics.map((d) => `${d.span.file}:${d.span.line}:${d.span.col}: ${d.message}`)).toEqual([
      "base.qal:2:31: unknown setting 'sclae' in the quant block",
    ]);
  });

  it('refuses include cycles and missing files', () => {
    const r = compileInline({ 'a.qal': 'include "b.qal"', 'b.qal': 'include "a.qal"\ninclude "c.qal"' });
    const text = messages(r).join('\n');
    expect(text).toContain("'a.qal' includes itself");
    expect(text).toContain("cannot read spec 'c.qal': no such file");
  });

  it('names a binary file once, instead of an error for every byte', () => {
    const r = compileInline({ 'main.qal': 'spec m\ninclude "blob.qal"', 'blob.qal': 'ab\ncd\u0000\u0001\u00ff'.repeat(5000) });
    expect(messages(r)).toEqual(['2:3: error: not a spec: a NUL byte, so this is a binary file [hint: a spec is UTF-8 text: statements such as `quant { bits = 4 }`]']);
    expect(r.diagnostics[0]!.span.file).toBe('blob.qal');
  });

  it('reads a path in an included file relative to that file, as the language says', () => {
    const root = mkdtempSync(join(tmpdir(), 'qalc-include-'));
    mkdirSync(join(root, 'specs'));
    mkdirSync(join(root, 'lib'));
    copyFileSync(STORIES_BIN, join(root, 'lib', 'stories.bin'));
    writeFileSync(join(root, 'lib', 'base.qal'), 'model {\n  checkpoint = "stories.bin"\n  tokenizer = "missing-tok.bin"\n}\n');
    writeFileSync(join(root, 'specs', 'main.qal'), 'spec m\ninclude "../lib/base.qal"\nquant { bits = 4  group = 4 }\n');
    const r = frontEnd(join(root, 'specs', 'main.qal'));
    expect(messages(r)).toEqual(["3:15: warning: tokenizer '../lib/missing-tok.bin' does not exist (yet): training and generation will need it"]);
    // The plan's paths are relative to the entry spec's folder, where train, eval and generate resolve them.
    expect(r.plan?.model).toMatchObject({ checkpoint: { path: '../lib/stories.bin' }, tokenizer: '../lib/missing-tok.bin' });
  });

  it('reads an absolute include where it says, not below the including file\'s folder', () => {
    const r = compileInline({
      'specs/main.qal': 'spec m\ninclude "/abs/base.qal"\ninclude "local.qal"',
      '/abs/base.qal': 'model { preset = llama_7b }',
      'specs/local.qal': 'quant { bits = 4  group = 32 }',
    });
    expect(messages(r)).toEqual([]);
    expect(r.loaded.files.map((f) => f.path)).toEqual(['specs/main.qal', '/abs/base.qal', 'specs/local.qal']);
  });
});

describe('Hugging Face and GPTQ checkpoints', () => {
  const root = mkdtempSync(join(tmpdir(), 'qalc-ckpt-'));
  const config = { model_type: 'llama', hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22, num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32000, max_position_embeddings: 2048, tie_word_embeddings: false };
  const hf = join(root, 'tinyllama');
  mkdirSync(hf);
  writeFileSync(join(hf, 'config.json'), JSON.stringify(config));
  const gptq = join(root, 'tinyllama-gptq');
  mkdirSync(gptq);
  writeFileSync(join(gptq, 'config.json'), JSON.stringify(config));
  writeFileSync(join(gptq, 'quantize_config.json'), JSON.stringify({ bits: 4, group_size: 128, desc_act: true, sym: false }));

  it('reads a Hugging Face config.json', () => {
    const r = compileSpec('quant { bits = 4  group = 64 }\nadapter { rank = 8 }', `model { checkpoint = "${hf}" }`);
    expect(messages(r)).toEqual([]);
    expect(r.plan?.model).toMatchObject({ source: 'checkpoint', checkpoint: { format: 'hf' }, architecture: { dim: 2048, hiddenDim: 5632, layers: 22, kvHeads: 4 } });
    expect(r.plan?.layers.find((l) => l.name === 'layers.0.k')).toMatchObject({ inFeatures: 2048, outFeatures: 256 });
  });

  it('holds a GPTQ checkpoint to its own bits and groups, and refuses its act-order with QA-LoRA', () => {
    const text = errors('quant { bits = 3  group = 64 }\nadapter { rank = 8 }', `model { checkpoint = "${gptq}" }`).join('\n');
    expect(text).toContain('the GPTQ checkpoint is 4-bit, but bits = 3');
    expect(text).toContain('the GPTQ checkpoint has group size 128, but group = 64');
    expect(text).toContain('act_order permutes the groups');
  });

  it('names a config.json that is not one', () => {
    const bad = join(root, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'config.json'), '{"hidden_size": "big"');
    expect(errors('quant { bits = 4  group = 32 }', `model { checkpoint = "${bad}" }`).join('\n')).toMatch(/config\.json: not valid JSON/);
  });
});
