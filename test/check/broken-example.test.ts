// examples/broken.qal holds a mistake of every kind; its diagnostics are pinned in a golden
// file so a change to any message is reviewed.
import { describe, expect, it } from 'vitest';
import { frontEnd } from '../../src/compile.ts';
import { renderDiagnostic, summarize } from '../../src/diagnostics/render.ts';
import { expectGolden } from '../support/golden.ts';

describe('examples/broken.qal', () => {
  const result = frontEnd('examples/broken.qal');

  it('reports every error in one run, as file:line:col with the source line and a caret', () => {
    const text = result.diagnostics.map((d) => renderDiagnostic(d, result.sources)).join('\n') + '\n' + summarize(result.diagnostics) + '\n';
    expectGolden('test/check/golden/broken.txt', text);
  });

  it('finds at least one error of each kind the example plants', () => {
    const all = result.diagnostics.map((d) => d.message).join('\n');
    for (const fragment of ['disagrees with preset', 'does not divide the in-features', "'fp61' is not a value of scale", 'alpha must be greater than 0',
      'dropout must be less than 1', "'gaet' is not a value of projections", 'match nothing', 'empty range', 'bits must be 2, 3, 4 or 8',
      'expected a statement', 'longer than the model', 'lr must be a number', 'recompute = 48 blocks, but the model has 32']) {
      expect(all).toContain(fragment);
    }
    expect(result.plan).toBeUndefined();
  });

  it('gives hints where a fix is likely', () => {
    const hints = result.diagnostics.map((d) => d.hint ?? '');
    expect(hints).toContain("did you mean 'gate'?");
    expect(hints).toContain("did you mean 'quant'?");
  });
});
