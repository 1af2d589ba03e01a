// The WGSL backend's output as a product: golden files for every stories260K kernel (review
// their diff like code; regenerate with UPDATE_GOLDEN=1), headers that say where each kernel
// came from, byte-identical output for the same plan, and no user text outside comments.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { emitWgsl, manifestJson } from '../../../src/backends/wgsl/emit.ts';
import { commentSafe } from '../../../src/backends/escape.ts';
import { frontEnd } from '../../../src/compile.ts';
import { lowerPlan } from '../../../src/ir/lower.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { syntheticPlan } from '../../ir/kernel-cases.ts';

const GOLDEN_DIR = fileURLToPath(new URL('./golden/stories260k/', import.meta.url));
const update = process.env['UPDATE_GOLDEN'] === '1';

const stories = (): Plan => {
  const { plan, diagnostics } = frontEnd('examples/stories260k.qal');
  if (!plan) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return plan;
};

function goldenFiles(plan: Plan): Map<string, string> {
  const emitted = emitWgsl(lowerPlan(plan, 'wgsl'));
  const files = new Map(emitted.map((e) => [e.fileName, e.source]));
  files.set('manifest.json', manifestJson(emitted.map((e) => e.manifest)));
  return files;
}

describe('WGSL for stories260K', () => {
  const files = goldenFiles(stories());

  it('matches the golden files (UPDATE_GOLDEN=1 to regenerate)', () => {
    if (update) {
      rmSync(GOLDEN_DIR, { recursive: true, force: true });
      mkdirSync(GOLDEN_DIR, { recursive: true });
      for (const [name, text] of files) writeFileSync(`${GOLDEN_DIR}${name}`, text);
    }
    expect(existsSync(GOLDEN_DIR), 'no golden files: run with UPDATE_GOLDEN=1').toBe(true);
    expect(readdirSync(GOLDEN_DIR).sort()).toEqual([...files.keys()].sort());
    for (const [name, text] of files) expect(text, `${name} differs from its golden file`).toBe(readFileSync(`${GOLDEN_DIR}${name}`, 'utf8'));
  });

  it('is byte-identical across runs', () => {
    expect(goldenFiles(stories())).toEqual(files);
  });

  it('starts every file with where it came from, its parameters and how to regenerate it', () => {
    const down = files.get('forward_k172_n64_b4_g43_qalora_r4_mean_f32.wgsl')!;
    const header = down.slice(0, down.indexOf('\n\n// Activations'));
    expect(header).toContain('// Regenerate: qalc compile examples/stories260k.qal');
    expect(header).toContain('// From: examples/stories260k.qal:11, examples/stories260k.qal:22, examples/stories260k.qal:18');
    expect(header).toContain('bits 4, group 43, L = 4 groups per column');
    expect(header).toContain('workgroup (16, 16, 1), tile 64 tokens x 64 outputs, reduction chunks of 16 (3 per group, never crossing one), 4 x 4 per invocation');
    expect(header).toContain('qweight u32 [22, 64]');
    expect(header).toContain('forward: dispatch (ceil(64 / 64), ceil(T / 64), 1)');
    expect(header.split('\n').every((line) => line.startsWith('//'))).toBe(true);
    expect(down).toContain('fn groupScalesAt(index: u32) -> f32');
    expect(down).toContain('pooledSums[r] += inputValue');
  });

  it('writes manifests a runtime can launch from', () => {
    const manifests = JSON.parse(files.get('manifest.json')!) as { kernel: string; entryPoints: { name: string; dispatch: string[] }[]; bindings: { name: string }[] }[];
    const grads = manifests.find((m) => m.kernel === 'adapter_grad_l4_n64_r4_f32')!;
    expect(grads.entryPoints.map((e) => e.name)).toEqual(['adapterOutputGrads', 'adapterInputGrads']);
    expect(grads.bindings.map((b) => b.name)).toEqual([
      'params', 'outputGrad', 'pooledInput', 'adapterActivation', 'adapterWeights', 'adapterActivationGrad', 'pooledInputGrad', 'adapterWeightGrads',
    ]);
  });
});

describe('user text in generated source', () => {
  it('is reduced to printable ASCII with no line breaks, backslashes or comment ends', () => {
    expect(commentSafe('a\nb\r\u2028c\\*/é')).toBe('a?b??c/*??');
  });

  it('cannot inject code through the spec name or path', () => {
    const plan = { ...syntheticPlan([{ inFeatures: 64, outFeatures: 32, bits: 4, group: 16 }]), spec: 'x\n@compute fn evil() {}', specFile: 'a\\\n*/ fn evil() {}.qal' };
    for (const { source } of emitWgsl(lowerPlan(plan, 'wgsl'))) {
      expect(source).not.toMatch(/^\s*(@compute fn evil|\*\/ fn evil)/m);
      expect(source.split('\n').filter((line) => line.includes('evil')).every((line) => line.startsWith('//'))).toBe(true);
    }
  });

  it('emits the f16 variant when asked', () => {
    const [first] = emitWgsl(lowerPlan(stories(), 'wgsl', { precision: 'f16' }));
    expect(first!.source).toContain('enable f16;');
    expect(first!.manifest.requires).toEqual(['f16']);
  });
});
