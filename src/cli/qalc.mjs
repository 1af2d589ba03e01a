#!/usr/bin/env node
// The `qalc` command. qalc is TypeScript, bundled with esbuild (bundle.mjs) so that a command
// starts at once (through a TypeScript loader it costs over half a second every time):
//   - installed from the package, it runs dist/cli, bundled when the package was packed
//     (prepack), and writes nothing into its own folder, which may be read-only;
//   - in a git checkout, where `npm ci` is the only setup step, it bundles src/cli/main.ts
//     into a new folder under node_modules/.cache/qalc (about 50 ms, only when a source file
//     changed since the last bundle; bundle.mjs's bundleCheckout), whether or not a dist/ from
//     an earlier `npm pack` lies there.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleCheckout, currentBundle, PACKAGED_BUNDLE, ROOT, STAMP_FILE } from './bundle.mjs';

const checkoutCache = join(ROOT, 'node_modules', '.cache', 'qalc');

/** The bundle is fresh when every file it was built from is unchanged (size and mtime). */
function isFresh(bundle) {
  if (bundle === undefined) return false;
  const stampPath = join(bundle, STAMP_FILE);
  if (!existsSync(stampPath)) return false;
  try {
    const inputs = JSON.parse(readFileSync(stampPath, 'utf8'));
    return Object.entries(inputs).every(([file, stamp]) => {
      const s = statSync(join(ROOT, file), { throwIfNoEntry: false });
      return s !== undefined && `${s.size}:${s.mtimeMs}` === stamp;
    });
  } catch {
    return false;
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

const installed = !existsSync(join(ROOT, '.git')) && existsSync(join(PACKAGED_BUNDLE, 'main.js'));
let bundle = installed ? PACKAGED_BUNDLE : currentBundle(checkoutCache);
if (!installed && !isFresh(bundle)) bundle = await bundleCheckout(checkoutCache);
process.setSourceMapsEnabled(true);
const { main } = await import(pathToFileURL(join(bundle, 'main.js')).href);
process.exitCode = await main(process.argv.slice(2));
