// The native CPU op table against the TypeScript ops (the shared suite, ../ops-suite.ts): within
// 1e-5 of the reference relative to its scale (max norm), and bit-identical between one thread
// and two; and its matrix-vector product against LlamaForward's.
import { describe, expect, it } from 'vitest';
import { matmul } from '../../../src/model/llama-forward.ts';
import { nativeCpuOps } from '../../../src/runtime/cpu/native-ops.ts';
import { relativeMaxError } from '../../support/relative-error.ts';
import { describeTrainingOps } from '../ops-suite.ts';
import { addon, createRng, nativeBuilt, randomFloats, withOneAndTwoThreads, withOneAndTwoThreadsAsync } from './native-support.ts';

describeTrainingOps('native CPU (1 and 2 threads)', !nativeBuilt, async () => ({
  ops: nativeCpuOps(),
  variants: (run) => withOneAndTwoThreadsAsync(() => run(nativeCpuOps())),
  error: relativeMaxError,
  tolerance: 1e-5,
}));

describe.skipIf(!nativeBuilt)('native matrix-vector product', () => {
  it.each([[64, 64], [172, 64], [5, 3], [64, 512]])('reproduces LlamaForward\'s matmul bit for bit, in %i → out %i', (inFeatures, outFeatures) => {
    const rng = createRng(inFeatures + outFeatures);
    const x = randomFloats(rng, inFeatures), w = randomFloats(rng, inFeatures * outFeatures);
    const expected = new Float32Array(outFeatures);
    matmul(expected, x, w, inFeatures, outFeatures);
    const [one, two] = withOneAndTwoThreads(() => {
      const y = new Float32Array(outFeatures);
      addon().matvecOutMajor(y, x, w, inFeatures, outFeatures);
      return y;
    });
    expect(one).toEqual(expected);
    expect(two).toEqual(expected);
  });
});
