// Bundles the qalc command (src/cli/main.ts and the stages its verbs load on demand) with
// esbuild, into a folder swapped in whole so a concurrent qalc never sees half a bundle.
// In a checkout the launcher (qalc.mjs) bundles into node_modules/.cache/qalc when a source
// changed (bundleCheckout); for the package, `npm pack` runs `node src/cli/bundle.mjs` (prepack)
// to write dist/cli, so an installed qalc never writes into its own folder (which may be read-only).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PACKAGED_BUNDLE = join(ROOT, 'dist', 'cli');
/** Written beside the bundle: every input file's `size:mtime`, for the launcher's freshness check. */
export const STAMP_FILE = 'inputs.json';

/** In a checkout's cache: the file naming the newest bundle's folder. */
export const CURRENT_FILE = 'current';

/** A bundle folder of the cache older than this, and not the newest, is removed by the next bundling. */
const KEEP_MS = 24 * 3600_000;

/** The newest bundle in a checkout's cache folder (bundleCheckout's), or undefined. */
export function currentBundle(cacheDir) {
  try {
    const name = readFileSync(join(cacheDir, CURRENT_FILE), 'utf8').trim();
    return name === '' ? undefined : join(cacheDir, name);
  } catch {
    return undefined;
  }
}

/**
 * A new bundle in a folder of its own under `cacheDir`, then named the newest. A qalc still
 * running from an older bundle keeps it: its verbs import their chunks on demand, and a bundle
 * swapped under it (another qalc started after a source changed) left those imports missing.
 * Folders older than a day go.
 */
export async function bundleCheckout(cacheDir) {
  mkdirSync(cacheDir, { recursive: true });
  const name = `build-${Date.now()}-${process.pid}`;
  const folder = join(cacheDir, name);
  await bundleCli(folder);
  const pointer = join(cacheDir, `${CURRENT_FILE}.${process.pid}`);
  writeFileSync(pointer, name);
  renameSync(pointer, join(cacheDir, CURRENT_FILE));
  for (const entry of readdirSync(cacheDir)) {
    if (!entry.startsWith('build-') || entry === name) continue;
    const old = join(cacheDir, entry);
    if (Date.now() - statSync(old).mtimeMs > KEEP_MS) rmSync(old, { recursive: true, force: true });
  }
  return folder;
}

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
