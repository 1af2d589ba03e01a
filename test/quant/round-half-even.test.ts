import { describe, expect, it } from 'vitest';
import { roundHalfEven } from '../../src/quant/round-half-even.ts';

describe('roundHalfEven', () => {
  it('breaks ties toward the even neighbour, like torch.round', () => {
    const cases: Array<[number, number]> = [
      [0.5, 0], [1.5, 2], [2.5, 2], [3.5, 4], [-0.5, -0], [-1.5, -2], [-2.5, -2], [-3.5, -4], [254.5, 254], [255.5, 256],
    ];
    for (const [x, expected] of cases) expect(roundHalfEven(x)).toBe(expected);
  });

  it('rounds non-ties to the nearest integer', () => {
    const cases: Array<[number, number]> = [
      [0.49999999999999994, 0], [0.5000000000000001, 1], [2.4999999999999996, 2], [2.5000000000000004, 3],
      [-1.4999999999999998, -1], [-1.5000000000000002, -2], [7, 7], [-7, -7], [1e-300, 0], [-1e-300, -0],
    ];
    for (const [x, expected] of cases) expect(roundHalfEven(x)).toBe(expected);
  });
});
