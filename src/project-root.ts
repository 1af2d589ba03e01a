// Where qalc's own files (package.json, templates/) are, whether this code runs from source or
// from the bundle the launcher builds under node_modules/.cache: the nearest folder above this
// module whose package.json is qalc's.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'qalc') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find qalc's package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export const PROJECT_ROOT = findRoot();
