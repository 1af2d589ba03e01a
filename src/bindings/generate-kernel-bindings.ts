// generated/<name>/kernels.mts: a typed value for every emitted kernel — an interface of its
// buffers (typed arrays named as the kernel names them, shapes in the doc comments), its
// uniform struct, and its launch configuration as functions of T — so a runtime or a user
// drives a kernel through types instead of reading the manifest by hand.
import { VariableDeclarationKind, type Project } from 'ts-morph';
import type { EmittedKernels } from '../backends/emit-kernels.ts';
import type { Binding, DispatchDim, LoweredKernel, SizeExpr } from '../ir/kernel-ir.ts';
import { formatShape } from '../ir/size-expr.ts';
import { literal } from './literal.ts';

/** `forward_k64_n64_b4_g16_qalora_r4_mean_f32` → `ForwardK64N64B4G16QaloraR4MeanF32`. */
export function pascalCase(name: string): string {
  return name.split('_').map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('');
}

/**
 * Names of one kernel's value and types: prefixed by the target, since a spec whose CUDA and
 * WGSL precisions agree (fp16 and f16) gets kernels of the same name on both.
 */
function names(target: 'wgsl' | 'cuda', kernel: string): { value: string; buffers: string; uniforms: string } {
  const type = `${target === 'wgsl' ? 'Wgsl' : 'Cuda'}${pascalCase(kernel)}`;
  return { value: `${target}${pascalCase(kernel)}`, buffers: `${type}Buffers`, uniforms: `${type}Uniforms` };
}

const HOST_ARRAY: Readonly<Record<string, string>> = { f32: 'Float32Array', u32: 'Uint32Array', i32: 'Int32Array', f16: 'Uint16Array', bf16: 'Uint16Array' };

/** `tokens * 4 + 160` as TypeScript over the parameter `tokens`. */
function sizeCode(size: SizeExpr): string {
  if (size.tokens === 0) return String(size.constant);
  const scaled = size.tokens === 1 ? 'tokens' : `${size.tokens} * tokens`;
  return size.constant === 0 ? scaled : `${scaled} + ${size.constant}`;
}

function shapeCode(shape: readonly SizeExpr[]): string {
  const usesTokens = shape.some((s) => s.tokens !== 0);
  return `(${usesTokens ? 'tokens' : '_tokens'}: number) => [${shape.map(sizeCode).join(', ')}]`;
}

function dispatchCode(dims: readonly DispatchDim[]): string {
  const usesTokens = dims.some((d) => d.count.tokens !== 0);
  const dim = (d: DispatchDim) => {
    if (d.count.tokens === 0) return String(Math.ceil(d.count.constant / d.per));
    if (d.per === 1) return sizeCode(d.count);
    const count = sizeCode(d.count);
    return `Math.ceil(${count.includes(' ') ? `(${count})` : count} / ${d.per})`;
  };
  return `(${usesTokens ? 'tokens' : '_tokens'}: number) => [${dims.map(dim).join(', ')}] as const`;
}

function storageBindings(kernel: LoweredKernel): Binding[] {
  return kernel.bindings.filter((b) => b.access !== 'uniform');
}

function buffersInterface(kernel: LoweredKernel, name: string) {
  return {
    isExported: true,
    name,
    docs: [`The buffers of ${kernel.name}, by the names the kernel gives them.`],
    properties: storageBindings(kernel).map((b) => ({
      name: b.name,
      type: HOST_ARRAY[b.elementType]!,
      docs: [`${b.elementType} ${formatShape(b.shape)}, ${b.access === 'read' ? 'read' : 'written'}${b.parts.length ? `; holds ${b.parts.map((p) => `${p.name} ${formatShape(p.shape)} at ${p.offset}`).join(', ')}` : ''}. ${b.doc}`],
    })),
  };
}

function buffersValue(kernel: LoweredKernel): string {
  const entries = storageBindings(kernel).map((b) => {
    const parts = b.parts.map((p) => `{ name: '${p.name}', offset: ${p.offset}, shape: ${shapeCode(p.shape)} }`);
    return `    ${b.name}: { binding: ${b.binding}, elementType: '${b.elementType}', access: '${b.access}', shape: ${shapeCode(b.shape)}, parts: [${parts.join(', ')}] },`;
  });
  return `{\n${entries.join('\n')}\n  }`;
}

function common(kernel: LoweredKernel, file: string): string {
  const constants = kernel.constants.map((c) => `${c.name}: ${c.value}`).join(', ');
  return [
    `  name: ${literal(kernel.name)},`,
    `  role: ${literal(kernel.role)},`,
    `  file: ${literal(file)},`,
    `  layers: [${kernel.layers.map((l) => literal(l)).join(', ')}],`,
    `  sources: [${kernel.sources.map((s) => literal(s)).join(', ')}],`,
    `  constants: { ${constants} },`,
    `  buffers: ${buffersValue(kernel)},`,
  ].join('\n');
}

export function addKernelBindings(project: Project, kernels: EmittedKernels, bindingsModule: string): string {
  const file = project.createSourceFile('kernels.mts', '', { overwrite: true });
  const kernelTypes = [...(kernels.wgsl.length ? ['WgslKernel'] : []), ...(kernels.cuda.length ? ['CudaKernel'] : [])];
  if (kernelTypes.length === 0) return '';
  file.addImportDeclaration({ isTypeOnly: true, moduleSpecifier: bindingsModule, namedImports: kernelTypes });
  for (const emitted of kernels.wgsl) {
    const k = emitted.kernel;
    const m = emitted.manifest;
    const n = names('wgsl', k.name);
    file.addInterface(buffersInterface(k, n.buffers));
    if (k.uniforms.length > 0) {
      file.addInterface({
        isExported: true,
        name: n.uniforms,
        docs: [`The uniform struct of ${k.name}.`],
        properties: k.uniforms.map((u) => ({ name: u.name, type: 'number', docs: [`${u.type}: ${u.doc}`] })),
      });
    }
    const uniformsType = k.uniforms.length > 0 ? n.uniforms : 'Record<string, never>';
    const uniforms = m.uniforms.binding === null ? 'null' : `{ binding: ${m.uniforms.binding}, size: ${m.uniforms.size}, fields: { ${m.uniforms.fields.map((f) => `${f.name}: { offset: ${f.offset}, type: '${f.type}' }`).join(', ')} } }`;
    const entryPoints = k.entryPoints.map((e) => `    { name: '${e.name}', workgroupSize: [${k.tiling.workgroupSize.join(', ')}], dispatch: ${dispatchCode(e.dispatch)}, bindings: [${e.uses.join(', ')}] },`);
    file.addVariableStatement({
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: [`${k.role} of ${k.layers.length} layer${k.layers.length === 1 ? '' : 's'} (${k.layers[0]}${k.layers.length > 1 ? ', …' : ''}); WGSL in ${emitted.fileName}.`],
      declarations: [{
        name: n.value,
        type: `WgslKernel<${n.buffers}, ${uniformsType}>`,
        initializer: `{\n  target: 'wgsl',\n${common(k, `wgsl/${emitted.fileName}`)}\n  requires: [${m.requires.map((r) => `'${r}'`).join(', ')}],\n  uniforms: ${uniforms},\n  entryPoints: [\n${entryPoints.join('\n')}\n  ],${k.shapeClass === 'decode' ? `\n  maxTokens: ${k.tiling.maxTokens},` : ''}\n}`,
      }],
    });
  }
  for (const emitted of kernels.cuda) {
    const k = emitted.kernel;
    const n = names('cuda', k.name);
    file.addInterface(buffersInterface(k, n.buffers));
    const launches = k.cuda.launches.map((l) => `    { symbol: '${l.symbol}', entryPoint: '${l.entryPoint}', minTokens: ${l.minTokens}, maxTokens: ${l.maxTokens ?? 'null'}, block: [${l.threads.join(', ')}], grid: ${dispatchCode(l.grid)}, sharedBytes: ${l.sharedBytes}, prologue: ${l.prologue ? `{ symbol: '${l.prologue.symbol}', block: [${l.prologue.threads.join(', ')}], grid: ${dispatchCode(l.prologue.grid)} }` : 'null'} },`);
    file.addVariableStatement({
      isExported: true,
      declarationKind: VariableDeclarationKind.Const,
      docs: [`${k.role} of ${k.layers.length} layer${k.layers.length === 1 ? '' : 's'} (${k.layers[0]}${k.layers.length > 1 ? ', …' : ''}); CUDA in ${emitted.fileName}.`],
      declarations: [{
        name: n.value,
        type: `CudaKernel<${n.buffers}>`,
        initializer: `{\n  target: 'cuda',\n${common(k, `cuda/${emitted.fileName}`)}\n  launchers: [${emitted.launcherSymbols.map((s) => `'${s}'`).join(', ')}],\n  launches: [\n${launches.join('\n')}\n  ],\n}`,
      }],
    });
  }
  return file.getFullText();
}
