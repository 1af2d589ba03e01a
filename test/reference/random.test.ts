import { describe, expect, it } from 'vitest';
import { createRng, randomNormalMatrix } from '../../src/reference/random.ts';

describe('createRng', () => {
  it('is reproducible from its seed and differs between seeds', () => {
    const first = Array.from({ length: 5 }, createRng(7).next);
    expect(Array.from({ length: 5 }, createRng(7).next)).toEqual(first);
    expect(Array.from({ length: 5 }, createRng(8).next)).not.toEqual(first);
  });

  it('draws uniforms in [0, 1) with the right mean and normals with the right moments', () => {
    const rng = createRng(123);
    const uniforms = Array.from({ length: 20000 }, rng.next);
    expect(Math.min(...uniforms)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...uniforms)).toBeLessThan(1);
    expect(uniforms.reduce((s, u) => s + u, 0) / uniforms.length).toBeCloseTo(0.5, 2);
    const normals = randomNormalMatrix(rng, 100, 200);
    const mean = normals.reduce((s, v) => s + v, 0) / normals.length;
    const variance = normals.reduce((s, v) => s + (v - mean) ** 2, 0) / normals.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });
});
