// Every bits × group size that an example spec uses has a kernel case, so the WGSL kernels
// (run on lavapipe) and, through the same table, any backend are tested on it.
import { readdirSync } from 'node:fs';
import { expect, it } from 'vitest';
import { frontEnd } from '../../src/compile.ts';
import { KERNEL_CASES } from './kernel-cases.ts';

it('the kernel cases cover every bits × group size of the examples', () => {
  const covered = new Set(KERNEL_CASES.map((c) => `${c.bits}×${c.group}`));
  const used = new Set<string>();
  for (const file of readdirSync('examples').filter((f) => f.endsWith('.qal') && f !== 'broken.qal')) {
    for (const layer of frontEnd(`examples/${file}`).plan!.layers) if (layer.quant) used.add(`${layer.quant.bits}×${layer.quant.group}`);
  }
  expect([...used].filter((combination) => !covered.has(combination))).toEqual([]);
  expect(used.size).toBeGreaterThanOrEqual(7);
});
