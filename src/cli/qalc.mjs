#!/usr/bin/env node
// The `qalc` command. qalc is written in TypeScript and runs from source through tsx's
// loader, so `npm ci` is the only setup step: there is no build to forget.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv.slice(2));
