// The WGSL backend's output as a product: golden files for every stories260K kernel (review
// their diff like code; regenerate with UPDATE_GOLDEN=1), headers that say where each kernel
// came from, byte-identical output for the same plan, and no user text outside comments.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emitWgsl } from '../../../src/backends/wgsl/emit.ts';
import { expectGolden, UPDATE_GOLDEN } from '../../support/golden.ts';
import { commentSafe } from '../../../src/backends/escape.ts';
import { frontEnd } from '../../../src/compile.ts';
import { lowerPlan } from '../../../src/ir/lower.ts';
import type { Plan } from '../../../src/plan/plan.ts';
import { syntheticPlan } from '../../ir/kernel-cases.ts';

// The golden files are the example's committed compile output (test/bindings/generated.test.ts
// checks the rest of that folder): one copy, reviewed as a diff.
const GOLDEN_DIR = 'generated/stories260k/wgsl';

const stories = (): Plan => {
  const { plan, diagnostics } = frontEnd('examples/stories260k.qal');
  if (!plan) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return plan;
};

function goldenFiles(plan: Plan): Map<string, string> {
  const emitted = emitWgsl(lowerPlan(plan, 'wgsl'));
  return new Map(emitted.map((e) => [e.fileName, e.source]));
}

describe('WGSL for stories260K', () => {
  const files = goldenFiles(stories());

  it('matches the golden files (UPDATE_GOLDEN=1 to regenerate)', () => {
    for (const [name, text] of files) expectGolden(join(GOLDEN_DIR, name), text);
    if (!UPDATE_GOLDEN) expect(readdirSync(GOLDEN_DIR).sort(), 'golden files of kernels no longer emitted: delete them').toEqual([...files.keys()].sort());
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
    const grads = emitWgsl(lowerPlan(stories(), 'wgsl')).map((e) => e.manifest).find((m) => m.kernel === 'adapter_grad_l4_n64_r4_f32')!;
    expect(grads.launches.map((l) => l.entryPoint)).toEqual(['adapterOutputGrads', 'adapterInputGrads']);
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
