import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { DIAGRAM_PATH, railroadHtml } from '../../grammars/qal/diagram.ts';

it('the committed railroad diagram is drawn from the current grammar', () => {
  expect(readFileSync(DIAGRAM_PATH, 'utf8'), 'grammars/qal.railroad.html is stale: run `npm run grammar:diagram`').toBe(railroadHtml());
  // Every rule of the grammar appears in it.
  for (const rule of ['statement', 'overrideStatement', 'selector', 'layerItem', 'body', 'setting', 'value', 'list', 'scalar']) {
    expect(railroadHtml()).toContain(`"name": "${rule}"`);
  }
});
