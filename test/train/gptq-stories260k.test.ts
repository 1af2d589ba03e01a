// method = gptq through the real spec path on stories260K: the GPTQ-quantized model's held-out
// loss beats RTN's at 4 bits, the per-layer lines say so layer by layer, and the GPTQ layers are
// the frozen base that train and merge use. Kept fast: 24 calibration windows of 48 tokens.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Plan } from '../../src/plan/plan.ts';
import { cpuBackend } from '../../src/runtime/cpu/backend.ts';
import { evaluateRun } from '../../src/train/evaluate-run.ts';
import { withStoredScales } from '../../src/quant/scale-dtype.ts';
import { setUpTraining } from '../../src/train/trainer.ts';
import { tinyStoriesPlan, writeTinyStoriesSpec } from '../support/tinystories-spec.ts';
import { spawnSync } from 'node:child_process';

const work = mkdtempSync(join(tmpdir(), 'qalc-gptq-stories-'));
// A cache of this file's own, so that the first load of each spec quantizes (and says so).
process.env.XDG_CACHE_HOME = join(work, 'cache');
const { ops } = cpuBackend();

const plan = (name: string, quant: string, overrides?: string): Plan =>
  tinyStoriesPlan(work, name, { quant, overrides: `override proj down { group = 43 }\n${overrides ?? ''}`, seqLen: 48, evalFraction: 0.05 });

describe('method = gptq on stories260K', () => {
  it('4 bits: a lower held-out loss than RTN, with a line per layer', async () => {
    const lines: string[] = [];
    const gptqPlan = plan('gptq4', 'bits = 4  group = 16  method = gptq  samples = 24');
    const rtn = await evaluateRun({ plan: plan('rtn4', 'bits = 4  group = 16'), specDir: work, ops, batches: 12 });
    const setup = setUpTraining(gptqPlan, work, ops, (line) => lines.push(line));
    expect(lines[0]).toMatch(/^gptq: calibrating on 24 windows of 48 tokens from the training data/);
    expect(lines.slice(1)).toHaveLength(5 * 7);
    expect(lines[1]).toMatch(/^gptq layers\.0\.q: 4-bit, group 16, relative output error \S+ \(RTN \S+, [\d.]+% less\)$/);
    expect(lines.at(-1)).toMatch(/^gptq layers\.4\.down: 4-bit, group 43/);
    expect(setup.weights.quantized?.size).toBe(35);
    const base = setup.model.blocks[2]!.up.layer.base;
    // GPTQ's codes and zeros as they are; its scales held in the spec's scale dtype (fp16), as a checkpoint stores them.
    const quantized = setup.weights.quantized!.get('layers.2.up')!;
    expect(base.kind === 'quantized' && base.weight).toEqual(withStoredScales(quantized, 'fp16', 'layers.2.up'));
    expect(base.kind === 'quantized' && base.weight.q).toBe(quantized.q);
    const gptq = await evaluateRun({ plan: gptqPlan, specDir: work, ops, batches: 12 });
    console.log(`held-out loss at 4 bits: RTN ${rtn.loss.toFixed(4)}, GPTQ ${gptq.loss.toFixed(4)} (${gptq.tokens} tokens)`);
    expect(gptq.tokens).toBe(rtn.tokens);
    expect(gptq.loss).toBeLessThan(rtn.loss - 0.003);
  });

  it('calibrates on the spec\'s calibration text when it names one; mixed RTN and GPTQ layers', () => {
    const lines: string[] = [];
    const text = join(work, 'calibration.txt');
    writeFileSync(text, 'Once upon a time there was a little girl. She liked to play in the park with her dog.\n\n'.repeat(40));
    const mixed = plan('mixed', 'bits = 3  group = 16', 'override proj q, k, v, o, down { method = gptq  samples = 4  calibration = "calibration.txt" }');
    setUpTraining(mixed, work, ops, (line) => lines.push(line));
    expect(lines[0]).toBe(`gptq: calibrating on 4 windows of 48 tokens from ${text}`);
    expect(lines.filter((l) => /layers\.\d\.(gate|up):/.test(l))).toEqual([]);
    expect(lines).toHaveLength(1 + 5 * 5);
  });

  it('a second load takes the layers from the cache; a damaged entry is said and rebuilt', () => {
    const p = plan('cached', 'bits = 2  group = 16  method = gptq  samples = 3');
    const first = setUpTraining(p, work, ops, () => {});
    const lines: string[] = [];
    const second = setUpTraining(p, work, ops, (line) => lines.push(line));
    expect(lines[1]).toMatch(/^gptq: 35 layers from the cache \(\w{12}…: same weights, settings and calibration tokens\)$/);
    expect(second.weights.quantized).toEqual(first.weights.quantized);
    const dir = join(work, 'cache', 'qalc', 'gptq');
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      writeFileSync(path, readFileSync(path).subarray(0, 5000));
    }
    const again: string[] = [];
    const third = setUpTraining(p, work, ops, (line) => again.push(line));
    expect(again.join('\n')).toMatch(/the GPTQ cache entry .* is damaged \(.*truncated.*\): quantizing again/);
    expect(again.filter((l) => l.startsWith('gptq layers.'))).toHaveLength(35);
    expect(third.weights.quantized).toEqual(first.weights.quantized);
  });
});

const tinyStoriesSpecFile = (folder: string, name: string, quant: string, overrides?: string) =>
  writeTinyStoriesSpec(folder, name, { quant, ...(overrides ? { overrides } : {}), seqLen: 48, evalFraction: 0.05 });

describe('method = gptq: bad input through the CLI, exit 1 naming the file or the layers', () => {
  const qalc = (spec: string) => spawnSync(process.execPath, ['src/cli/qalc.mjs', 'eval', spec, '--batches', '1'], { encoding: 'utf8' });

  it('a calibration file that does not exist', () => {
    const p = tinyStoriesSpecFile(work, 'missing_calibration', 'bits = 4  group = 16  method = gptq  samples = 2  calibration = "nowhere.txt"');
    const r = qalc(p);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${join(work, 'nowhere.txt')}: no such file: it is the calibration text of method = gptq`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('GPTQ layers calibrated differently: check refuses it at the setting', () => {
    const p = tinyStoriesSpecFile(work, 'two_calibrations', 'bits = 4  group = 16  method = gptq  samples = 2', 'override proj down { group = 43 }\noverride proj q { samples = 3 }');
    const r = qalc(p);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/two_calibrations\.qal:\d+:\d+: error: samples = 2 for k, v, o, gate, up, down of layers 0\.\.4, but 3 for layers\.0\.q: GPTQ calibrates the whole model with one data set\n.*\n.*\^+\nhint: give every method = gptq layer the same samples/);
  });
});
