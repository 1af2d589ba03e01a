import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DIAGRAM_PATH, railroadHtml } from './diagram.ts';

writeFileSync(DIAGRAM_PATH, railroadHtml());
process.stdout.write(`wrote ${fileURLToPath(DIAGRAM_PATH)}\n`);
