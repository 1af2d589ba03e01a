// The CUDA templates as compiled Handlebars functions, once per process and folder: files under
// templates/cuda/ (the linear kernels) or templates/cuda/ops/ (the model ops) whose names start
// with `_` are partials, named in camel case (`_small-gemm.cu.hbs` is `{{> smallGemm}}`); the
// linear kernels' partials are visible to the ops' templates too (the header, for one).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Handlebars from 'handlebars';
import { PROJECT_ROOT } from '../../project-root.ts';

export type Template = (context: object) => string;

// From the project root, not this module: the CLI runs a bundle that lives elsewhere.
const CUDA_TEMPLATES = pathToFileURL(join(PROJECT_ROOT, 'templates', 'cuda') + '/');

const loaded = new Map<string, ReadonlyMap<string, Template>>();

function templateFiles(dir: URL): string[] {
  return readdirSync(dir).filter((file) => file.endsWith('.cu.hbs')).sort();
}

/** The templates of templates/cuda/<folder> ('' for the linear kernels, 'ops/' for the model ops) by file stem. */
export function cudaTemplates(folder: '' | 'ops/'): ReadonlyMap<string, Template> {
  const cached = loaded.get(folder);
  if (cached) return cached;
  const handlebars = Handlebars.create();
  const dir = new URL(folder, CUDA_TEMPLATES);
  for (const partialDir of new Set([CUDA_TEMPLATES.href, dir.href])) {
    for (const file of templateFiles(new URL(partialDir))) {
      if (!file.startsWith('_')) continue;
      const name = file.slice(1, -'.cu.hbs'.length).replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
      handlebars.registerPartial(name, readFileSync(new URL(file, partialDir), 'utf8'));
    }
  }
  const byStem = new Map<string, Template>();
  for (const file of templateFiles(dir)) {
    if (file.startsWith('_')) continue;
    // noEscape: the output is CUDA, not HTML. strict: a field the context lacks is an error.
    byStem.set(file.slice(0, -'.cu.hbs'.length), handlebars.compile(readFileSync(new URL(file, dir), 'utf8'), { noEscape: true, strict: true }));
  }
  loaded.set(folder, byStem);
  return byStem;
}
