// Writes what check-rope-theta.py compares: stories260K-hf's weights under another config.json
// (rope_theta 1e6 in rope_parameters, rms_norm_eps 1e-6) in OUT/model, and qalc's float32
// logits for the fixture's reference prompt under it (LlamaForward, every position) in
// OUT/qalc-logits.json. Run here, then run check-rope-theta.py OUT on the machine with
// transformers:
//
//   npx esbuild --bundle --platform=node --format=esm test/model/device/rope-theta-logits.ts --outfile=/tmp/rope-theta.mjs
//   node /tmp/rope-theta.mjs OUT [FIXTURE]      (from the repository root)
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readHfCheckpoint } from '../../../src/model/hf-checkpoint.ts';
import { LlamaForward } from '../../../src/model/llama-forward.ts';

export const ROPE_THETA = 1e6;
export const RMS_NORM_EPS = 1e-6;

const out = process.argv[2];
if (!out) throw new Error('usage: node rope-theta.mjs OUT [FIXTURE]');
// Run from the repository root: the fixture is ../shared's (or the second argument).
const fixture = resolve(process.argv[3] ?? '../shared/models/stories260K-hf');
const model = join(out, 'model');
mkdirSync(model, { recursive: true });
copyFileSync(join(fixture, 'model.safetensors'), join(model, 'model.safetensors'));
const config = JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8')) as Record<string, unknown>;
writeFileSync(join(model, 'config.json'), JSON.stringify({ ...config, rms_norm_eps: RMS_NORM_EPS, rope_parameters: { rope_theta: ROPE_THETA, rope_type: 'default' } }, null, 2));
const reference = JSON.parse(readFileSync(join(fixture, 'reference_logits.json'), 'utf8')) as { input_ids: number[] };
const forward = new LlamaForward(readHfCheckpoint(model));
const logits = reference.input_ids.map((token, pos) => Array.from(forward.forward(token, pos)));
writeFileSync(join(out, 'qalc-logits.json'), JSON.stringify({ input_ids: reference.input_ids, rope_theta: ROPE_THETA, rms_norm_eps: RMS_NORM_EPS, logits }));
console.log(`wrote ${model} and ${join(out, 'qalc-logits.json')} (${logits.length} positions)`);
