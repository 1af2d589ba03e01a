// Launch formulas and token ranges as manifest.json writes them, read back by the runtime.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { entryPointsOf, evaluateFormula, launchFor, tokensInRange, type CudaManifestKernel } from '../../../src/runtime/cuda/launch.ts';

const manifests = readdirSync('generated').flatMap((spec) => {
  try {
    const kernels = (JSON.parse(readFileSync(`generated/${spec}/manifest.json`, 'utf8')) as { kernels: { target: string }[] }).kernels;
    return kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  } catch {
    return [];
  }
});

describe('launch formulas', () => {
  it('evaluates the forms the manifest uses', () => {
    expect(evaluateFormula('ceil(64 / 16)', 7)).toBe(4);
    expect(evaluateFormula('ceil(T / 16)', 17)).toBe(2);
    expect(evaluateFormula('ceil((4*T + 256) / 64)', 512)).toBe(36);
    expect(evaluateFormula('4*T + 160', 3)).toBe(172);
    expect(evaluateFormula('1', 99)).toBe(1);
    expect(() => evaluateFormula('ceil(T / 16', 1)).toThrow(/expected \)/);
    expect(() => evaluateFormula('T % 2', 1)).toThrow(/unexpected text/);
  });

  it('reads token ranges', () => {
    expect(tokensInRange('1 <= T <= 63', 63)).toBe(true);
    expect(tokensInRange('1 <= T <= 63', 64)).toBe(false);
    expect(tokensInRange('T >= 64', 64)).toBe(true);
    expect(tokensInRange('T >= 1', 0)).toBe(false);
    expect(() => tokensInRange('T != 3', 1)).toThrow(/cannot read/);
  });

  it('every CUDA kernel of every example: each entry point has exactly one launch per T, with a positive grid', () => {
    expect(manifests.length).toBeGreaterThan(0);
    for (const kernel of manifests) {
      const maxTokens = kernel.role === 'decode' ? Number(kernel.constants['MAX_TOKENS']) : 600;
      for (const entryPoint of entryPointsOf(kernel)) {
        for (const tokens of [1, 15, 16, 63, 64, 65, 512, maxTokens].filter((t) => t <= maxTokens)) {
          const matching = kernel.launches.filter((l) => l.entryPoint === entryPoint && tokensInRange(l.tokens, tokens));
          expect(matching, `${kernel.kernel} ${entryPoint} T=${tokens}`).toHaveLength(1);
          const launch = launchFor(kernel, entryPoint, tokens)!;
          for (const g of launch.grid) expect(Number.isInteger(g) && g >= 1).toBe(true);
        }
      }
    }
  });
});
