// Weights [out, in] (as a checkpoint stores them) that visit group-wise RTN's corners, for the
// tests that hold a quantize kernel to the host RTN bit for bit: normal weights; an all-zero group
// (widened to [−1, 1]); an all-positive group (symmetric: the zero mid-range, the top clamped); a
// group on a grid of eighths (w / s lands on exact ties); a symmetric group's extreme on its tie
// (w / s = ±(2^b − 1)/2), where float32 and float64 arithmetic round apart.
import { createRng } from '../../src/reference/random.ts';

export function rtnCornerWeights(inFeatures: number, outFeatures: number, group: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const K = inFeatures, N = outFeatures, g = group;
  const w = new Float32Array(N * K);
  for (let i = 0; i < w.length; i++) w[i] = rng.normal() * 0.05;
  const run = (o: number, k: number) => w.subarray(o * K + k * g, o * K + (k + 1) * g);
  run(0, 0).fill(0);
  run(1 % N, 0).forEach((_, i, values) => { values[i] = Math.abs(values[i]!); });
  run(2 % N, 0).forEach((_, i, values) => { values[i] = Math.round(rng.uniform(-8, 8)) / 8; });
  if (K / g > 1) run(3 % N, 1).forEach((_, i, values) => { values[i] = i % 3 === 0 ? -0.5 : i % 3 === 1 ? 0.5 : 0.125; });
  return w;
}
