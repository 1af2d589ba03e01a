// Bundles the qalc command (src/cli/main.ts and the stages its verbs load on demand) with
// esbuild, into a folder swapped in whole so a concurrent qalc never sees half a bundle.
// In a checkout the launcher (qalc.mjs) bundles into node_modules/.cache/qalc when a source
// changed; for the package, `npm pack` runs `node src/cli/bundle.mjs` (prepack) to write
// dist/cli, so an installed qalc never writes into its own folder (which may be read-only).
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PACKAGED_BUNDLE = join(ROOT, 'dist', 'cli');
/** Written beside the bundle: every input file's `size:mtime`, for the launcher's freshness check. */
export const STAMP_FILE = 'inputs.json';

export async function bundleCli(outdir) {
  const { build } = await import('esbuild');
  const staging = `${outdir}.${process.pid}`;
  const result = await build({
    absWorkingDir: ROOT,
    // The worker that draws random weights in parallel loads beside the chunk that starts it.
    entryPoints: { main: 'src/cli/main.ts', 'random-weights-worker': 'src/train/random-weights-worker.ts' },
    bundle: true,
    splitting: true, // verbs load their stages on demand: `qalc check` never loads ts-morph
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outdir: staging,
    sourcemap: 'inline',
    metafile: true,
    logLevel: 'error',
  });
  const inputs = {};
  for (const file of Object.keys(result.metafile.inputs)) {
    const s = statSync(join(ROOT, file));
    inputs[file] = `${s.size}:${s.mtimeMs}`;
  }
  writeFileSync(join(staging, STAMP_FILE), JSON.stringify(inputs));
  mkdirSync(dirname(outdir), { recursive: true });
  rmSync(outdir, { recursive: true, force: true });
  try {
    renameSync(staging, outdir);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another qalc won the race
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await bundleCli(PACKAGED_BUNDLE);
  process.stderr.write(`qalc: bundled the command into ${PACKAGED_BUNDLE}\n`);
}
