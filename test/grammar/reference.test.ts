import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { withCurrentTables } from '../../src/check/schema-reference.ts';
import { BLOCK_SCHEMAS } from '../../src/check/schema.ts';

it('the language reference lists every setting the checker knows, as the checker knows it', () => {
  const document = readFileSync('grammars/LANGUAGE.md', 'utf8');
  expect(document, 'grammars/LANGUAGE.md is stale: run `npm run grammar:docs`').toBe(withCurrentTables(document));
  for (const [block, schema] of Object.entries(BLOCK_SCHEMAS)) {
    for (const key of Object.keys(schema)) expect(document, `${block}.${key}`).toContain(`| \`${key}\` |`);
  }
});
