// AdamW's update rule step by step, global-norm clipping, and the learning-rate schedules.
import { describe, expect, it } from 'vitest';
import { AdamW, constantSchedule, cosineSchedule, linearSchedule } from '../../src/train/adamw.ts';

const parameter = (value: number[], grad: number[]) => ({ name: 'p', value: Float64Array.from(value), grad: Float64Array.from(grad) });

describe('AdamW', () => {
  it('applies bias-corrected moments and decoupled weight decay (two steps, by hand)', () => {
    const p = parameter([1, -2], [0.5, 0.1]);
    const lr = 0.1, wd = 0.01, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const optimizer = new AdamW([p], { lr, weightDecay: wd });
    optimizer.step();
    // Step 1: m̂ = g, v̂ = g², so the update is g / (|g| + eps) ≈ sign(g).
    expect(p.value[0]).toBeCloseTo(1 * (1 - lr * wd) - lr * (0.5 / (0.5 + eps)), 14);
    expect(p.value[1]).toBeCloseTo(-2 * (1 - lr * wd) - lr * (0.1 / (0.1 + eps)), 14);
    const after1 = Float64Array.from(p.value);
    p.grad.set([-0.3, 0.2]);
    optimizer.step();
    [[0.5, -0.3], [0.1, 0.2]].forEach(([g1, g2], i) => {
      const m = b1 * (1 - b1) * g1 + (1 - b1) * g2;
      const v = b2 * (1 - b2) * g1 * g1 + (1 - b2) * g2 * g2;
      const update = (m / (1 - b1 ** 2)) / (Math.sqrt(v / (1 - b2 ** 2)) + eps);
      expect(p.value[i]).toBeCloseTo(after1[i] * (1 - lr * wd) - lr * update, 14);
    });
    expect(optimizer.stepsDone).toBe(2);
  });

  it('clips the global gradient norm over all parameters, leaving the gradients themselves alone', () => {
    // eps = 1 makes the update depend on the gradient's scale, so clipping shows.
    const clipped = [parameter([0], [3]), parameter([0, 0], [0, 4])];
    const report = new AdamW(clipped, { lr: 1, eps: 1, maxGradNorm: 1 }).step();
    expect(report.gradNorm).toBeCloseTo(5, 12);
    expect(report.clipped).toBe(true);
    expect(clipped[0].grad[0]).toBe(3);
    const prescaled = [parameter([0], [3 / (5 + 1e-6)]), parameter([0, 0], [0, 4 / (5 + 1e-6)])];
    new AdamW(prescaled, { lr: 1, eps: 1 }).step();
    expect(clipped[0].value[0]).toBeCloseTo(prescaled[0].value[0], 12);
    expect(clipped[1].value[1]).toBeCloseTo(prescaled[1].value[1], 12);
    expect(new AdamW([parameter([0], [0.5])], { lr: 1, maxGradNorm: 1 }).step().clipped).toBe(false);
  });

  it('minimizes a quadratic', () => {
    const p = parameter([3, -4, 0.5], [0, 0, 0]);
    const optimizer = new AdamW([p], { lr: cosineSchedule({ peak: 0.1, warmup: 10, total: 500 }) });
    for (let step = 0; step < 500; step++) {
      p.value.forEach((x, i) => { p.grad[i] = 2 * (x - i); });
      optimizer.step();
    }
    p.value.forEach((x, i) => expect(x).toBeCloseTo(i, 2));
  });
});

describe('learning-rate schedules (Hugging Face conventions, 0-based update index)', () => {
  it('warms up linearly from 0, then holds, decays linearly or along a cosine', () => {
    const constant = constantSchedule({ peak: 1, warmup: 4 });
    expect([0, 1, 2, 3, 4, 100].map(constant)).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
    const linear = linearSchedule({ peak: 2, warmup: 2, total: 12, final: 0.2 });
    expect(linear(1)).toBe(1);
    expect(linear(2)).toBe(2);
    expect(linear(7)).toBeCloseTo(1.1, 12);
    expect(linear(12)).toBeCloseTo(0.2, 12);
    expect(linear(20)).toBeCloseTo(0.2, 12);
    const cosine = cosineSchedule({ peak: 1, warmup: 0, total: 10 });
    expect(cosine(0)).toBe(1);
    expect(cosine(5)).toBeCloseTo(0.5, 12);
    expect(cosine(10)).toBeCloseTo(0, 12);
    expect(new AdamW([parameter([0], [1])], { lr: constant }).step().lr).toBe(0);
  });
});
