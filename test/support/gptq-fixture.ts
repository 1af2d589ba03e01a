// GPTQ directories for tests, made by test/model/gptq_fixture.py (numpy, AutoGPTQ's packing
// loops) from stories260K-hf, so that qalc's reader and writer are checked against code that
// is not qalc's.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

export const STORIES260K_HF = resolve('../shared/models/stories260K-hf');
const SCRIPT = resolve('test/model/gptq_fixture.py');

/** `gptq_fixture.py make` into `out` (e.g. ['--bits', '4', '--group', '16']); returns `out`. */
export function makeGptqFixture(out: string, args: readonly string[]): string {
  const r = spawnSync('python3', [SCRIPT, 'make', STORIES260K_HF, out, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gptq_fixture.py make failed: ${r.stderr}`);
  return out;
}

/** `gptq_fixture.py decode`: every quantized layer's Ŵ as AutoGPTQ's forward unpacks it, [out, in] F32 in `out`. */
export function decodeWithNumpy(dir: string, out: string): string {
  const r = spawnSync('python3', [SCRIPT, 'decode', dir, out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`gptq_fixture.py decode failed: ${r.stderr}`);
  return out;
}
