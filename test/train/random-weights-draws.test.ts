// drawInWorkers (src/train/random-weights-parallel.ts), the draws a device quantizes: the worker
// is a file of the bundle, so this bundles the pool and its worker with esbuild as
// test/runtime/cuda/h200/bundle-qalc.sh does, then asks for every projection of a small shape on
// 3 worker threads (a window of 6 ahead, fewer than its 20 projections, so the window moves) and
// compares each with drawRandomMatrix on one thread: the same floats, in order, a projection kept
// in float (bits = null) skipped.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

it('drawInWorkers gives drawRandomMatrix\'s floats for every projection, in order, on worker threads', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qalc-draws-'));
  const root = resolve('.');
  const entry = join(dir, 'entry.ts');
  writeFileSync(entry, `
import { drawInWorkers } from '${root}/src/train/random-weights-parallel.ts';
import { drawRandomMatrix, RANDOM_TENSOR_NAMES } from '${root}/src/model/random-weights.ts';
import { projectionShape, PROJECTIONS } from '${root}/src/train/qalora-spec.ts';
const arch = { dim: 64, hiddenDim: 96, layers: 3, heads: 4, kvHeads: 2, vocab: 32, context: 16, tiedEmbeddings: true, ropeTheta: 10000, rmsNormEps: 1e-5 };
const quantized = { bits: 4, group: 16, adapter: null };
const spec = [0, 1, 2].map((l) => Object.fromEntries(PROJECTIONS.map((p) => [p, l === 1 && p === 'v' ? { ...quantized, bits: null } : quantized])));
const draws = drawInWorkers(arch, 11, spec, 3);
if (draws === undefined) throw new Error('no worker file beside the bundle');
let compared = 0, skipped = 0;
try {
  for (let l = 0; l < arch.layers; l++) {
    for (const p of ['q', 'k', 'v', 'o', 'gate', 'down', 'up']) {
      const got = draws.draw(l, p);
      if (l === 1 && p === 'v') { if (got !== undefined) throw new Error('a float projection was drawn'); skipped++; continue; }
      const { outFeatures, inFeatures } = projectionShape(arch, p);
      const want = drawRandomMatrix(11, 'layers.' + l + '.' + RANDOM_TENSOR_NAMES[p], outFeatures, inFeatures, new Float32Array(outFeatures * inFeatures));
      if (got.length !== want.length || got.some((v, i) => !Object.is(v, want[i]))) throw new Error('layers.' + l + '.' + p + ' differs');
      compared++;
    }
  }
} finally {
  draws.close();
}
console.log(JSON.stringify({ compared, skipped, threads: draws.threads }));
`);
  const bundle = (input: string, output: string) => {
    const built = spawnSync('npx', ['esbuild', input, '--bundle', '--platform=node', '--format=esm', '--target=node20', '--log-level=error', `--outfile=${output}`], { encoding: 'utf8' });
    expect(built.status, built.stderr).toBe(0);
  };
  bundle(entry, join(dir, 'entry.mjs'));
  bundle(join(root, 'src/train/random-weights-worker.ts'), join(dir, 'random-weights-worker.js'));
  const ran = spawnSync(process.execPath, [join(dir, 'entry.mjs')], { encoding: 'utf8' });
  expect(ran.status, ran.stderr).toBe(0);
  expect(JSON.parse(ran.stdout)).toEqual({ compared: 20, skipped: 1, threads: 3 });
}, 120_000);
