// The railroad diagram of the grammar, drawn by chevrotain from the parser itself, so it cannot
// drift from what qalc accepts. `npm run grammar:diagram` rewrites grammars/qal.railroad.html;
// a test fails when the committed file is stale.
import { createSyntaxDiagramsCode } from 'chevrotain';
import { qalParser } from './parser.ts';

export const DIAGRAM_PATH = new URL('../qal.railroad.html', import.meta.url);

/** The diagram's scripts come from the chevrotain package that `npm ci` installs: it opens offline. */
const RESOURCES = '../node_modules/chevrotain/diagrams/';

export function railroadHtml(): string {
  return createSyntaxDiagramsCode(qalParser.getSerializedGastProductions(), {
    resourceBase: RESOURCES,
    css: `${RESOURCES}diagrams.css`,
  });
}
