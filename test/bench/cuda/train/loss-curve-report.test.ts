import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lossCurveReport, readSteps } from './loss-curve-report.mjs';

const step = (n: number, loss: number, extra: Record<string, number> = {}) => ({ step: n, loss, grad_norm: loss / 10, seconds: 0.3, ...extra });

describe('loss-curve report', () => {
  it('compares only the steps trained again after the checkpoint, and windows the curve', () => {
    const first = [1, 2, 3, 4, 5, 6, 7].map((n) => step(n, 10 - n / 10));
    const resumed = [...first.slice(0, 5), { ...step(6, 10 - 0.6) }, step(7, 9.25), step(8, 9.2, { eval_loss: 9.4 })];
    const r = lossCurveReport(first, resumed, 4, 4);
    expect(r.overlap).toBe(3); // steps 5, 6, 7
    expect(r.differing).toBe(1); // step 7's loss changed
    expect(r.finite).toBe(true);
    expect(r.windows.map((w) => [w.from, w.to])).toEqual([[1, 4], [5, 8]]);
    expect(r.windows[1]!.heldOut).toEqual([9.4]);
    expect(lossCurveReport(first, [...resumed, step(9, Number.NaN)], 4).finite).toBe(false);
  });

  it('reads train.jsonl, leaving out a line torn by the kill', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'qalc-loss-curve-')), 'train.jsonl');
    writeFileSync(file, `${JSON.stringify(step(1, 2))}\n${JSON.stringify(step(2, 1.5))}\n{"step": 3, "lo`);
    expect(readSteps(file).map((r) => r.step)).toEqual([1, 2]);
    expect(readSteps(join(file, 'missing'))).toEqual([]);
  });
});
