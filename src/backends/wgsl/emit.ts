// The WGSL backend: one module per lowered kernel, printed through the templates in
// templates/wgsl, plus its manifest fragment. Every decision was made in the IR; this file
// only spells it in WGSL. Output is deterministic: same program, same bytes.
import { readdirSync, readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import type { Constant, LoweredKernel, LoweredProgram, ScalarType } from '../../ir/kernel-ir.ts';
import { formatShape } from '../../ir/size-expr.ts';
import { configOfKernel } from '../../ir/passes/share-layers.ts';
import { headerLines } from './header.ts';
import type { WgslManifestKernel } from '../manifest.ts';
import { manifestOf } from './manifest.ts';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PROJECT_ROOT } from '../../project-root.ts';

export interface EmittedWgslKernel {
  readonly kernel: LoweredKernel;
  readonly fileName: string;
  readonly source: string;
  readonly manifest: WgslManifestKernel;
}

// From the project root, not this module: the CLI runs a bundle that lives elsewhere.
const TEMPLATE_DIR = pathToFileURL(join(PROJECT_ROOT, 'templates', 'wgsl') + '/');

type Template = (context: object) => string;

let templates: { readonly byRole: ReadonlyMap<string, Template> } | undefined;

/** Templates compile once per process; partials are files whose names start with `_`. */
function loadTemplates(): { readonly byRole: ReadonlyMap<string, Template> } {
  if (templates) return templates;
  const handlebars = Handlebars.create();
  const byRole = new Map<string, Template>();
  for (const file of readdirSync(TEMPLATE_DIR).sort()) {
    if (!file.endsWith('.wgsl.hbs')) continue;
    const text = readFileSync(new URL(file, TEMPLATE_DIR), 'utf8');
    const name = file.slice(0, -'.wgsl.hbs'.length);
    if (name.startsWith('_')) {
      handlebars.registerPartial(name.slice(1).replace(/-(\w)/g, (_, c: string) => c.toUpperCase()), text);
    } else {
      // noEscape: the output is WGSL, not HTML. strict: a field the IR lacks is an error.
      byRole.set(name, handlebars.compile(text, { noEscape: true, strict: true }));
    }
  }
  templates = { byRole };
  return templates;
}

function wgslType(type: ScalarType): string {
  if (type === 'bf16') throw new Error('WGSL has no bf16');
  return type;
}

function literal(constant: Constant): string {
  if (constant.type === 'u32') return `${constant.value}u`;
  const text = String(constant.value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

function contextOf(program: LoweredProgram, kernel: LoweredKernel): object {
  const config = configOfKernel(program, kernel);
  return {
    headerLines: headerLines(program, kernel, config),
    enableF16: program.precision === 'f16',
    activationType: wgslType(kernel.dtypes.activation),
    constants: kernel.constants.map((c) => ({ name: c.name, type: c.type, literal: literal(c) })),
    uniformFields: kernel.uniforms,
    bindingDeclarations: kernel.bindings.map((b) => ({
      binding: b.binding,
      name: b.name,
      doc: b.doc,
      shape: b.access === 'uniform' ? 'Params' : formatShape(b.shape),
      addressSpace: b.access === 'uniform' ? 'uniform' : b.access === 'read' ? 'storage, read' : 'storage, read_write',
      type: b.access === 'uniform' ? 'Params' : `array<${wgslType(b.elementType as ScalarType)}>`,
    })),
    partAccessors: kernel.bindings.flatMap((b) =>
      b.parts.map((part) => ({
        name: part.name,
        storeName: `store${part.name[0]!.toUpperCase()}${part.name.slice(1)}`,
        binding: b.name,
        offset: part.offset,
        doc: part.doc,
        shape: formatShape(part.shape),
        type: wgslType(b.elementType as ScalarType),
        writable: b.access === 'read_write',
      })),
    ),
    codesStraddleWords: kernel.weightLayout.codesStraddleWords,
    dequantizes: kernel.role === 'backward_data' || kernel.role === 'dequantize',
    adapter: kernel.epilogue.kind === 'adapter',
    dropout: kernel.epilogue.kind === 'adapter' ? kernel.epilogue.dropout : config.adapter?.dropout ?? false,
    pooling: kernel.pooling !== null,
    unpool: kernel.epilogue.kind === 'unpool',
    symmetric: config.symmetric,
  };
}

export function emitWgslKernel(program: LoweredProgram, kernel: LoweredKernel): EmittedWgslKernel {
  if (program.target !== 'wgsl') throw new Error(`the WGSL backend was handed a program lowered for ${program.target}`);
  const template = loadTemplates().byRole.get(kernel.role);
  if (!template) throw new Error(`no WGSL template for role ${kernel.role}`);
  const fileName = `${kernel.name}.wgsl`;
  const source = template(contextOf(program, kernel)).replace(/\n{3,}/g, '\n\n');
  return { kernel, fileName, source, manifest: manifestOf(program, kernel, fileName) };
}

/** Every kernel of the program, in IR order. */
export function emitWgsl(program: LoweredProgram): EmittedWgslKernel[] {
  return program.kernels.map((kernel) => emitWgslKernel(program, kernel));
}
