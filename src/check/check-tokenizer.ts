// The tokenizer is read at check time, so that a file that train or generate would refuse — one
// qalc cannot read, or one made for another vocabulary — is an error in the spec, where it is
// named. A missing file is only a warning (check-spec.ts): it may be made later.
import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { error, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { modelTokenizerPath, readAnyTokenizer } from '../model/read-tokenizer.ts';
import type { CheckedModel } from './checked-spec.ts';

export function checkTokenizer(model: CheckedModel, entry: string, out: Diagnostic[]): void {
  const setting = model.settings.get('tokenizer');
  const dir = dirname(entry);
  const path = modelTokenizerPath(setting ? String(setting.value) : undefined, model.checkpoint, dir);
  if (!path || !existsSync(path)) return;
  const span = setting?.valueSpan ?? model.settings.get('checkpoint')?.valueSpan ?? model.span;
  const written = setting ? String(setting.value) : relative(dir, path);
  let vocabSize: number;
  try {
    vocabSize = readAnyTokenizer(path).vocabSize;
  } catch (e) {
    out.push(error(span, `cannot read tokenizer '${written}': ${(e as Error).message.replace(`${path}: `, '')}`));
    return;
  }
  const vocab = model.architecture.vocab;
  if (vocabSize === vocab) return;
  const against = model.checkpoint ? `checkpoint '${model.checkpoint.path}'` : model.preset ? `preset ${model.preset}` : 'the model block';
  out.push(error(span, `tokenizer '${written}' has ${vocabSize} tokens but ${against} has a vocabulary of ${vocab}`,
    'a model is trained with one tokenizer: use the one it came with'));
}
