// The kernel manifest: everything a runtime needs to launch a spec's compiled kernels without
// reading their source or re-running the compiler — per kernel its role, target, constants,
// bindings (shapes as linear expressions of T), and launches (entry point, symbol, block or
// workgroup size, grid or dispatch as expressions of T, the token range, shared memory).
// Both emitters produce it, manifest.json is its serialisation (serializeManifest), and both
// runtimes read it back through parseManifest: one declaration, one reader, no formula text.
import { architectureIdentity } from '../model/architecture.ts';
import { createHash } from 'node:crypto';
import type { Access, DispatchDim, LoweredKernel, ScalarType, SizeExpr } from '../ir/kernel-ir.ts';
import { evaluateDispatch, evaluateSize } from '../ir/size-expr.ts';
import type { Plan } from '../plan/plan.ts';
import { MODEL_OPS } from './cuda/model-op-names.ts';
import type { ModelOpKernel } from './cuda/model-ops.ts';
import { jsonText } from './escape.ts';

export interface ManifestBindingPart {
  readonly name: string;
  /** Elements from the start of the binding. */
  readonly offset: number;
  readonly shape: readonly SizeExpr[];
}

export interface ManifestBinding {
  readonly binding: number;
  readonly name: string;
  /** 'params' is the run-time scalars (a WGSL uniform struct, CUDA's trailing arguments). */
  readonly elementType: ScalarType | 'params';
  readonly access: Access;
  readonly shape: readonly SizeExpr[];
  /** Tensors packed back to back into this binding (empty: it holds one). */
  readonly parts: readonly ManifestBindingPart[];
}

/** The T a launch accepts: min ≤ T, and T ≤ max unless max is null. */
export interface TokenRange {
  readonly min: number;
  readonly max: number | null;
}

export interface ManifestLaunch {
  /** The IR entry point it implements (`forward`, `adapterOutputGrads`, …); run in list order. */
  readonly entryPoint: string;
  /** CUDA: the extern "C" kernel; WGSL: the entry point function. */
  readonly symbol: string;
  /** CUDA block or WGSL workgroup size. */
  readonly workgroup: readonly [number, number, number];
  /** CUDA grid or WGSL workgroup count, per axis ⌈count(T) / per⌉. */
  readonly dispatch: readonly [DispatchDim, DispatchDim, DispatchDim];
  readonly tokens: TokenRange;
  /** Static shared (workgroup) memory the symbol declares. */
  readonly sharedBytes: number;
  /** The bindings it uses (WGSL: its bind group; CUDA: every buffer, in parameter order). */
  readonly bindings: readonly number[];
  /** CUDA: a kernel launched first, on the same stream with the same parameters (the forward's u/v prologue). */
  readonly prologue?: { readonly symbol: string; readonly workgroup: readonly [number, number, number]; readonly dispatch: readonly [DispatchDim, DispatchDim, DispatchDim] };
}

interface ManifestKernelCommon {
  readonly kernel: string;
  readonly role: string;
  /** Relative to the compile folder: `cuda/NAME.cu`, `wgsl/NAME.wgsl`. */
  readonly file: string;
  readonly layers: readonly string[];
  /** `spec.qal:LINE` of the lines that shaped it. */
  readonly sources: readonly string[];
  readonly constants: Readonly<Record<string, number>>;
  readonly bindings: readonly ManifestBinding[];
  readonly launches: readonly ManifestLaunch[];
}

export interface UniformLayout {
  readonly binding: number | null;
  /** Bytes, rounded up to WGSL's 16-byte uniform alignment. */
  readonly size: number;
  readonly fields: readonly { readonly name: string; readonly type: 'u32' | 'f32'; readonly offset: number }[];
}

export interface WgslManifestKernel extends ManifestKernelCommon {
  readonly target: 'wgsl';
  /** WGSL extensions the module enables; a device without them cannot run it. */
  readonly requires: readonly string[];
  readonly uniforms: UniformLayout;
}

export interface CudaManifestKernel extends ManifestKernelCommon {
  readonly target: 'cuda';
  /** Host launchers compiled into the file, one per entry point: `<kernel>__<entry>__launch`. */
  readonly launchers: readonly string[];
  /** sha256 (16 hex digits) of the source below its header: what a fatbin must be built from. */
  readonly codeHash: string;
}

export type ManifestKernel = WgslManifestKernel | CudaManifestKernel;

/**
 * A CUDA model op (src/backends/cuda/model-ops.ts): its description as emitted, the source's
 * place in the compile folder, and the hash of its code (what a fatbin must be built from).
 * The grid is not here: the runtime computes it from the call's sizes (each entry's `grid` says how).
 */
export interface ModelOpManifestKernel extends ModelOpKernel {
  /** `cuda/ops/<kernel>.cu`, relative to the compile folder; fatbins beside it as `<kernel>.<arch>.fatbin`. */
  readonly file: string;
  readonly codeHash: string;
}

export interface KernelManifest {
  readonly spec: string;
  readonly specFile: string;
  /** kernelPlanHash of the plan it was compiled from: a runtime uses it only for that plan. */
  readonly planHash: string;
  readonly kernels: readonly ManifestKernel[];
  /** The CUDA model ops; empty without a cuda target (and in a manifest written before they existed). */
  readonly modelOps: readonly ModelOpManifestKernel[];
}

/** A lowered kernel's bindings as both targets' manifest entries list them. */
export function manifestBindings(kernel: LoweredKernel): ManifestBinding[] {
  return kernel.bindings.map((b) => ({
    binding: b.binding, name: b.name, elementType: b.elementType, access: b.access, shape: b.shape,
    parts: b.parts.map((p) => ({ name: p.name, offset: p.offset, shape: p.shape })),
  }));
}

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
  }
}

/**
 * What the kernels are a function of: the model's shapes, every layer's plan and the targets.
 * (θ and ε do not reach the linear kernels, but a compile folder belongs to one model.)
 * Training settings, exports and the spec's file name are left out, so changing them keeps a
 * compile folder usable.
 */
export function kernelPlanHash(plan: Plan): string {
  const layers = plan.layers.map(({ sources: _sources, ...layer }) => layer);
  return createHash('sha256').update(jsonText({ architecture: architectureIdentity(plan.model.architecture), layers, targets: plan.targets }, 0)).digest('hex').slice(0, 16);
}

/** The source a fatbin is built from: without the leading comment header, which names the spec file. */
export function kernelCode(source: string): string {
  const lines = source.split('\n');
  let first = 0;
  while (first < lines.length && (lines[first]!.startsWith('//') || lines[first]!.trim() === '')) first++;
  return lines.slice(first).join('\n');
}

export function codeHash(source: string): string {
  return createHash('sha256').update(kernelCode(source)).digest('hex').slice(0, 16);
}

/** manifest.json: sizes and short number lists on one line each, so a diff reads like a table. */
export function serializeManifest(manifest: unknown): string {
  const text = jsonText(manifest)
    .replace(/\{\n\s*"tokens": (-?[\d.e-]+),\n\s*"constant": (-?[\d.e-]+)\n\s*\}/g, '{ "tokens": $1, "constant": $2 }')
    .replace(/\[\n\s*((?:-?[\d.e-]+,\n\s*)*-?[\d.e-]+)\n\s*\]/g, (_, items: string) => `[${items.split(/,\n\s*/).join(', ')}]`)
    .replace(/\{\n\s*"count": (\{[^\n]*\}),\n\s*"per": (\d+)\n\s*\}/g, '{ "count": $1, "per": $2 }')
    .replace(/\{\n\s*"min": (\d+),\n\s*"max": (\d+|null)\n\s*\}/g, '{ "min": $1, "max": $2 }')
    .replace(/\[\n\s*(\{[^\n]*\}(?:,\n\s*\{[^\n]*\})*)\n\s*\]/g, (list: string, items: string) => {
      const line = `[${items.split(/,\n\s*/).join(', ')}]`;
      return line.length <= 160 ? line : list;
    });
  return `${text}\n`;
}

// The reader checks the structure it relies on, so a hand-edited or truncated manifest.json is
// an error naming the file and the entry, never an undefined deep in a launch.
type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isSize = (v: Json): boolean => isObject(v) && typeof v['tokens'] === 'number' && typeof v['constant'] === 'number';
const isDispatch = (v: Json): boolean => isObject(v) && isSize(v['count']) && typeof v['per'] === 'number' && (v['per'] as number) > 0;
const isTriple = (v: Json, item: (x: Json) => boolean): boolean => Array.isArray(v) && v.length === 3 && v.every(item);

function checkKernel(path: string, k: Json, index: number): ManifestKernel {
  const where = isObject(k) && typeof k['kernel'] === 'string' ? `kernel ${k['kernel']}` : `kernels[${index}]`;
  const fail = (what: string): never => {
    throw new ManifestError(path, `${where}: ${what}`);
  };
  if (!isObject(k)) return fail('not an object');
  for (const field of ['kernel', 'role', 'file']) if (typeof k[field] !== 'string') fail(`${field} must be a string`);
  if (k['target'] !== 'cuda' && k['target'] !== 'wgsl') fail(`target must be 'cuda' or 'wgsl'`);
  if (!isObject(k['constants']) || !Object.values(k['constants']).every((c) => typeof c === 'number')) fail('constants must map names to numbers');
  if (!Array.isArray(k['bindings'])) return fail('bindings must be a list');
  for (const b of k['bindings']) {
    if (!isObject(b) || typeof b['binding'] !== 'number' || typeof b['name'] !== 'string' || typeof b['elementType'] !== 'string' || typeof b['access'] !== 'string' ||
      !Array.isArray(b['shape']) || !b['shape'].every(isSize) || !Array.isArray(b['parts'])) fail(`binding ${isObject(b) ? String(b['name']) : '?'} is malformed`);
  }
  if (!Array.isArray(k['launches']) || k['launches'].length === 0) return fail('launches must be a non-empty list');
  for (const l of k['launches']) {
    if (!isObject(l) || typeof l['entryPoint'] !== 'string' || typeof l['symbol'] !== 'string' || !isTriple(l['workgroup'], (x) => Number.isInteger(x)) ||
      !isTriple(l['dispatch'], isDispatch) || !isObject(l['tokens']) || typeof l['tokens']['min'] !== 'number' ||
      !(l['tokens']['max'] === null || typeof l['tokens']['max'] === 'number') || typeof l['sharedBytes'] !== 'number' || !Array.isArray(l['bindings'])) {
      fail(`launch ${isObject(l) ? String(l['symbol']) : '?'} is malformed`);
    }
    const prologue = (l as Record<string, Json>)['prologue'];
    if (prologue !== undefined && (!isObject(prologue) || typeof prologue['symbol'] !== 'string' || !isTriple(prologue['workgroup'], (x) => Number.isInteger(x)) || !isTriple(prologue['dispatch'], isDispatch))) {
      fail(`the prologue of launch ${String((l as Record<string, Json>)['symbol'])} is malformed`);
    }
  }
  if (k['target'] === 'wgsl' && (!isObject(k['uniforms']) || !Array.isArray(k['uniforms']['fields']) || !Array.isArray(k['requires']))) fail('a WGSL kernel needs uniforms and requires');
  if (k['target'] === 'cuda' && (typeof k['codeHash'] !== 'string' || !Array.isArray(k['launchers']))) fail('a CUDA kernel needs codeHash and launchers');
  return k as unknown as ManifestKernel;
}

const PARAMETER_TYPES = new Set(['pointer', 'u32', 'f32']);
/** cType, doc and grid are this project's additions to the contract's types: optional, strings when there. */
const optionalString = (v: Json): boolean => v === undefined || typeof v === 'string';

function checkModelOp(path: string, k: Json, index: number): ModelOpManifestKernel {
  const where = isObject(k) && typeof k['kernel'] === 'string' ? `model op ${k['kernel']}` : `modelOps[${index}]`;
  const fail = (what: string): never => {
    throw new ManifestError(path, `${where}: ${what}`);
  };
  if (!isObject(k)) return fail('not an object');
  for (const field of ['kernel', 'template', 'file', 'codeHash']) if (typeof k[field] !== 'string') fail(`${field} must be a string`);
  if (typeof k['op'] !== 'string' || !(MODEL_OPS as readonly string[]).includes(k['op'])) fail(`op must be one of ${MODEL_OPS.join(', ')}`);
  if (!isObject(k['constants']) || !Object.values(k['constants']).every((c) => typeof c === 'number')) fail('constants must map names to numbers');
  if (!Array.isArray(k['entryPoints']) || k['entryPoints'].length === 0) return fail('entryPoints must be a non-empty list');
  for (const e of k['entryPoints']) {
    const name = isObject(e) ? String(e['name']) : '?';
    if (!isObject(e) || typeof e['name'] !== 'string' || typeof e['symbol'] !== 'string' || !isTriple(e['block'], (x) => Number.isInteger(x) && (x as number) > 0) ||
      typeof e['sharedBytes'] !== 'number' || !optionalString(e['grid']) || typeof e['computes'] !== 'string' || !Array.isArray(e['parameters'])) {
      return fail(`entry point ${name} is malformed`);
    }
    for (const p of e['parameters']) {
      if (!isObject(p) || typeof p['name'] !== 'string' || !PARAMETER_TYPES.has(p['type'] as string) || !optionalString(p['cType']) || !optionalString(p['doc'])) {
        fail(`entry point ${name}: parameter ${isObject(p) ? String(p['name']) : '?'} is malformed (name, type pointer|u32|f32, and cType and doc strings where given)`);
      }
    }
  }
  return k as unknown as ModelOpManifestKernel;
}

export function parseManifest(text: string, path: string): KernelManifest {
  let value: Json;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(path, `not JSON (${(e as Error).message})`);
  }
  if (!isObject(value) || typeof value['spec'] !== 'string' || typeof value['planHash'] !== 'string' || !Array.isArray(value['kernels'])) {
    throw new ManifestError(path, 'not a qalc kernel manifest (expected spec, planHash and kernels)');
  }
  value['kernels'].forEach((k, i) => checkKernel(path, k, i));
  const modelOps = value['modelOps'] ?? [];
  if (!Array.isArray(modelOps)) throw new ManifestError(path, 'modelOps must be a list');
  modelOps.forEach((k, i) => checkModelOp(path, k, i));
  return { ...(value as unknown as KernelManifest), modelOps: modelOps as ModelOpManifestKernel[] };
}

// Reading a kernel's entries for a token count T.

/** The launches that run `kernel` for T, one per entry point in order; undefined when some entry point has none for T. */
export function launchesFor(kernel: ManifestKernel, tokens: number): ManifestLaunch[] | undefined {
  const entryPoints = [...new Set(kernel.launches.map((l) => l.entryPoint))];
  const chosen: ManifestLaunch[] = [];
  for (const entryPoint of entryPoints) {
    const launch = kernel.launches.find((l) => l.entryPoint === entryPoint && tokens >= l.tokens.min && (l.tokens.max === null || tokens <= l.tokens.max));
    if (launch === undefined) return undefined;
    chosen.push(launch);
  }
  return chosen;
}

export function dispatchFor(launch: ManifestLaunch, tokens: number): [number, number, number] {
  return launch.dispatch.map((dim) => evaluateDispatch(dim, tokens)) as [number, number, number];
}

export function bindingNamed(kernel: ManifestKernel, name: string): ManifestBinding {
  const binding = kernel.bindings.find((b) => b.name === name);
  if (binding === undefined) throw new Error(`kernel ${kernel.kernel} has no binding ${name}`);
  return binding;
}

export function hasBinding(kernel: Pick<ManifestKernel, 'bindings'>, name: string): boolean {
  return kernel.bindings.some((b) => b.name === name);
}

/** The dimensions of a binding for T. */
export function shapeFor(binding: ManifestBinding, tokens: number): number[] {
  return binding.shape.map((size) => evaluateSize(size, tokens));
}

export function elementsFor(binding: ManifestBinding, tokens: number): number {
  return shapeFor(binding, tokens).reduce((n, d) => n * d, 1);
}
