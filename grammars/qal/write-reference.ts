import { readFileSync, writeFileSync } from 'node:fs';
import { withCurrentTables } from '../../src/check/schema-reference.ts';

const path = new URL('../LANGUAGE.md', import.meta.url);
writeFileSync(path, withCurrentTables(readFileSync(path, 'utf8')));
process.stdout.write('rewrote the settings tables of grammars/LANGUAGE.md\n');
