// loss.svg as a person reads it: y ticks at round values, evenly spaced, and a marker on every
// held-out point (they are few, and the line between them hides where they were measured).
import { describe, expect, it } from 'vitest';
import { lossCurveSvg, type LossPoint } from '../../src/train/loss-plot.ts';

const train: LossPoint[] = Array.from({ length: 200 }, (_, i) => ({ step: i + 1, loss: 3.3 + 2 * Math.exp(-i / 30) + 0.05 * Math.sin(i) }));
const held: LossPoint[] = [{ step: 0, loss: 5.2787 }, { step: 50, loss: 3.71 }, { step: 100, loss: 3.45 }, { step: 150, loss: 3.39 }, { step: 200, loss: 3.3833 }];

/** A round step: 1, 2, 2.5 or 5 times a power of ten. */
function isRound(step: number): boolean {
  const power = 10 ** Math.floor(Math.log10(step));
  return [1, 2, 2.5, 5, 10].some((m) => Math.abs(step / power - m) < 1e-9);
}

describe('the loss plot', () => {
  const svg = lossCurveSvg('run', train, held);

  it('labels the y axis at round, evenly spaced values inside the plot', () => {
    const labels = [...svg.matchAll(/<text [^>]*class="y-tick"[^>]*>([^<]+)<\/text>/g)].map((m) => Number(m[1]));
    expect(labels.length).toBeGreaterThanOrEqual(4);
    expect(labels.length).toBeLessThanOrEqual(10);
    const steps = labels.slice(1).map((v, i) => v - labels[i]!);
    for (const step of steps) expect(step).toBeCloseTo(steps[0]!, 9);
    expect(isRound(steps[0]!)).toBe(true);
    for (const v of labels) expect(Math.abs(v / steps[0]! - Math.round(v / steps[0]!))).toBeLessThan(1e-9);
    const all = [...train, ...held].map((p) => p.loss);
    expect(labels[0]!).toBeGreaterThanOrEqual(Math.min(...all) - steps[0]!);
    expect(labels.at(-1)!).toBeLessThanOrEqual(Math.max(...all) + steps[0]!);
  });

  it('marks every held-out point', () => {
    const markers = [...svg.matchAll(/<circle [^>]*class="held-out"[^>]*>/g)];
    expect(markers).toHaveLength(held.length);
    const cx = markers.map((m) => Number(/cx="([\d.]+)"/.exec(m[0])![1]));
    expect(cx).toEqual([...cx].sort((a, b) => a - b));
    expect(new Set(cx).size).toBe(held.length);
  });

  it('shows a hostile run name as text, never as markup', () => {
    const hostile = lossCurveSvg('a</text><script>alert(1)</script>"\u0007', train, held);
    expect(hostile).not.toContain('<script>');
    expect(hostile).toContain('a&lt;/text&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x2407;');
  });
});
