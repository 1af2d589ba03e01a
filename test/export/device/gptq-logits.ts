// qalc's logits of a GPTQ export, as qalc reads it back (src/model/gptq-checkpoint.ts), at every
// position of the reference prompt: what check-gptq.py compares transformers' own GPTQ loading
// against. Writes DIR/qalc-logits.json.
//
//   npx tsx test/export/device/gptq-logits.ts DIR TOKENIZER
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REFERENCE_PROMPT } from '../../../src/export/formats.ts';
import { readGptqCheckpoint } from '../../../src/model/gptq-checkpoint.ts';
import { LlamaForward } from '../../../src/model/llama-forward.ts';
import { readTokenizer } from '../../../src/model/read-tokenizer.ts';

const [dir, tokenizerPath] = process.argv.slice(2);
if (!dir || !tokenizerPath) throw new Error('usage: gptq-logits.ts DIR TOKENIZER');
const weights = readGptqCheckpoint(dir);
const tokens = readTokenizer(tokenizerPath, weights.arch.vocab).encode(REFERENCE_PROMPT);
const forward = new LlamaForward(weights);
const logits = tokens.map((token, pos) => Array.from(forward.forward(token, pos)));
writeFileSync(join(dir, 'qalc-logits.json'), JSON.stringify({ what: `qalc's logits of the GPTQ checkpoint ${dir} as qalc reads it back`, prompt: REFERENCE_PROMPT, tokens, logits }) + '\n');
console.log(`wrote ${join(dir, 'qalc-logits.json')}: ${tokens.length} positions`);
