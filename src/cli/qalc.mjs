#!/usr/bin/env node
// The `qalc` command. qalc is TypeScript and `npm ci` is the only setup step, so this launcher
// compiles the CLI itself: esbuild bundles src/cli/main.ts into node_modules/.cache/qalc (about
// 50 ms, only when a source file changed since the last bundle), and later runs start at once.
// Running through a TypeScript loader instead costs over half a second on every command.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cache = join(root, 'node_modules', '.cache', 'qalc');
const stampPath = join(cache, 'inputs.json');

/** The bundle is fresh when every file it was built from is unchanged (size and mtime). */
function isFresh() {
  if (!existsSync(stampPath)) return false;
  try {
    const inputs = JSON.parse(readFileSync(stampPath, 'utf8'));
    return Object.entries(inputs).every(([file, stamp]) => {
      const s = statSync(join(root, file), { throwIfNoEntry: false });
      return s !== undefined && `${s.size}:${s.mtimeMs}` === stamp;
    });
  } catch {
    return false;
  }
}

async function rebuild() {
  const { build } = await import('esbuild');
  const staging = `${cache}.${process.pid}`;
  const result = await build({
    absWorkingDir: root,
    entryPoints: { main: 'src/cli/main.ts' },
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
    const s = statSync(join(root, file));
    inputs[file] = `${s.size}:${s.mtimeMs}`;
  }
  writeFileSync(join(staging, 'inputs.json'), JSON.stringify(inputs));
  // Swap the whole folder so a concurrent qalc never sees half a bundle.
  mkdirSync(dirname(cache), { recursive: true });
  rmSync(cache, { recursive: true, force: true });
  try {
    renameSync(staging, cache);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another qalc won the race
  }
}

// `qalc inspect … | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
// A closed stderr only loses messages: the command goes on and exits with its own status
// (`qalc check spec.qal 2>&1 >/dev/null | head -1` must still say whether the spec is clean).
process.stderr.on('error', (error) => {
  if (error.code !== 'EPIPE') throw error;
});

if (!isFresh()) await rebuild();
process.setSourceMapsEnabled(true);
const { main } = await import(pathToFileURL(join(cache, 'main.js')).href);
process.exitCode = await main(process.argv.slice(2));
