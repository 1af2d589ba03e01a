// `qalc export` and the spec's export block on bad input: every refusal exits 1 with a message
// naming the file, the folder or the layer (never 2), and leaves nothing behind — no export
// folder, no temporary folder, the run folder byte for byte as it was.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { ExportError, exportFormat, type ExportFormat } from '../../src/export/formats.ts';
import { writeExport } from '../../src/export/write-export.ts';
import { readGguf } from '../../src/export/gguf/read-gguf.ts';
import { exportFromRun } from '../../src/train/export-run.ts';
import { ops, planFrom, specText, trainedRun, type TrainedRun } from './trained-run.ts';

let run: TrainedRun;
beforeAll(async () => { run = await trainedRun(); }, 120_000);

let stderr = '';
afterEach(() => { vi.restoreAllMocks(); });
async function qalc(...args: string[]): Promise<number> {
  stderr = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => { stderr += String(s); return true; });
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    return await main(args);
  } finally {
    vi.restoreAllMocks();
  }
}

/** Every file of a folder with its hash: what "untouched" means. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out[path] = createHash('sha256').update(readFileSync(path)).digest('hex');
  }
  return out;
}

describe('qalc export', () => {
  it('exports a spec\'s run, reporting the merge check, and leaves the run as it was', async () => {
    const before = snapshot(run.runDir);
    const out = join(run.work, 'out-gguf');
    expect(await qalc('export', run.specPath, '--run', run.runDir, '--format', 'gguf', '--out', out), stderr).toBe(0);
    expect(stderr).toMatch(/check on a held-out batch: loss \d\.\d+ with adapters, \d\.\d+ merged/);
    expect(stderr).toContain(`as gguf into ${out}: model.gguf, export.json`);
    expect(readdirSync(out).sort()).toEqual(['export.json', 'model.gguf']);
    expect(snapshot(run.runDir)).toEqual(before);
    // A qalc export is itself an input: eval and generate read it, export converts it.
    const qalcOut = join(run.work, 'out-qalc');
    expect(await qalc('export', run.specPath, '--run', run.runDir, '--format', 'qalc', '--out', qalcOut)).toBe(0);
    expect(await qalc('export', qalcOut, '--format', 'gguf', '--out', join(run.work, 'out-gguf-2'))).toBe(0);
    // The same model: the qalc file holds scales and zeros in float32, the in-memory merge float64,
    // so Q4_1's fp16 m = −s·z′ may round to the neighbouring fp16 value: at most one fp16 step
    // (2⁻¹⁰ relative) of the largest value.
    const [direct, viaQalc] = await Promise.all([readGguf(join(out, 'model.gguf')), readGguf(join(run.work, 'out-gguf-2', 'model.gguf'))]);
    expect(viaQalc.tensors.map((t) => [t.name, t.type])).toEqual(direct.tensors.map((t) => [t.name, t.type]));
    viaQalc.tensors.forEach((t, i) => {
      const reference = direct.tensors[i]!.values;
      const tolerance = 1e-5 + 2 ** -10 * Math.max(...reference.map(Math.abs));
      expect(Math.max(...t.values.map((v, j) => Math.abs(v - reference[j]!))), t.name).toBeLessThanOrEqual(tolerance);
    });
    expect(await qalc('generate', qalcOut, '--prompt', 'Once', '--steps', '8')).toBe(0);
  });

  it.each([
    [['--format', 'onnx'], "unknown export format 'onnx': expected qalc, gguf, gptq, gptq-v2, peft-qalora, peft-lora"],
    [[], '--format is required'],
  ])('refuses %j with exit 1', async (args, message) => {
    const out = join(run.work, `refused-${args.join('-') || 'none'}`);
    expect(await qalc('export', run.specPath, '--run', run.runDir, ...args, '--out', out)).toBe(1);
    expect(stderr).toContain(message);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses an out folder that holds an export, or anything else', async () => {
    const out = join(run.work, 'taken');
    expect(await qalc('export', run.specPath, '--run', run.runDir, '--format', 'qalc', '--out', out)).toBe(0);
    const before = snapshot(out);
    expect(await qalc('export', run.specPath, '--run', run.runDir, '--format', 'gguf', '--out', out)).toBe(1);
    expect(stderr).toContain(`${out} already holds a qalc export of spec exported, run ${run.runDir} (step 4) (export.json): remove it, or choose another --out`);
    expect(snapshot(out)).toEqual(before);
    const cluttered = join(run.work, 'cluttered');
    mkdirSync(cluttered);
    writeFileSync(join(cluttered, 'notes.txt'), 'mine');
    expect(await qalc('export', run.specPath, '--run', run.runDir, '--format', 'gguf', '--out', cluttered)).toBe(1);
    expect(stderr).toContain(`${cluttered} is not empty`);
    // An empty folder is fine.
    const empty = join(run.work, 'empty');
    mkdirSync(empty);
    expect(await qalc('export', run.specPath, '--run', run.runDir, '--format', 'gguf', '--out', empty)).toBe(0);
  });

  it('refuses a truncated checkpoint, naming it, and writes nothing', async () => {
    const runDir = join(run.work, 'truncated-run');
    mkdirSync(runDir);
    const bytes = readFileSync(run.checkpoint);
    writeFileSync(join(runDir, 'checkpoint.safetensors'), bytes.subarray(0, bytes.length - 100));
    const out = join(run.work, 'from-truncated');
    expect(await qalc('export', run.specPath, '--run', runDir, '--format', 'qalc', '--out', out)).toBe(1);
    expect(stderr).toContain(`${join(runDir, 'checkpoint.safetensors')}: truncated`);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a checkpoint of another spec\'s adapters, and a spec with no run', async () => {
    const other = planFrom(join(run.work, 'other.qal'), specText(join(run.work, 'shakespeare.txt'), { group: 16 }).replace('rank = 2', 'rank = 3'));
    expect(other.spec).toBe('exported');
    expect(await qalc('export', join(run.work, 'other.qal'), '--run', run.runDir, '--format', 'qalc', '--out', join(run.work, 'o1'))).toBe(1);
    expect(stderr).toMatch(/checkpoint\.safetensors: was written by a run of spec 'exported' whose adapters differ from this plan's/);
    expect(await qalc('export', run.specPath, '--run', join(run.work, 'nowhere'), '--format', 'qalc', '--out', join(run.work, 'o2'))).toBe(1);
    expect(stderr).toContain('no run to export');
    expect(existsSync(join(run.work, 'o1')) || existsSync(join(run.work, 'o2'))).toBe(false);
  });

  it('refuses adapter formats for a merged model, and a run folder without its spec', async () => {
    const merged = join(run.work, 'out-merged');
    expect(await qalc('export', run.specPath, '--run', run.runDir, '--format', 'qalc', '--out', merged)).toBe(0);
    expect(await qalc('export', merged, '--format', 'peft-lora', '--out', join(run.work, 'p'))).toBe(1);
    expect(stderr).toContain('exports the adapters alone');
    expect(await qalc('export', run.runDir, '--format', 'gguf', '--out', join(run.work, 'p'))).toBe(1);
    expect(stderr).toContain(`${run.runDir} is a run folder with no merged model: it holds the adapters, not the base model they apply to: give its spec`);
    expect(await qalc('export', join(run.work, 'missing.safetensors'), '--format', 'gguf')).toBe(1);
    expect(stderr).toContain('missing.safetensors: no such file or folder');
  });

  it('refuses a format that cannot hold the model, naming the layer, and writes nothing', async () => {
    const strict = join(run.work, 'strict');
    expect(await qalc('export', run.specPath, '--run', run.runDir, '--format', 'gguf', '--strict', '--out', strict)).toBe(1);
    expect(stderr).toContain('model.layers.0.mlp.down_proj (blk.0.ffn_down.weight): group 43 is not a multiple of Q4_1\'s 32-value blocks');
    const qalora = join(run.work, 'qalora');
    expect(await qalc('export', run.specPath, '--run', run.runDir, '--format', 'peft-qalora', '--out', qalora)).toBe(1);
    expect(stderr).toContain('export --format peft-lora instead (exact on any PEFT)');
    expect(existsSync(strict) || existsSync(qalora)).toBe(false);
    expect(readdirSync(run.work).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  it('leaves nothing when a write fails midway, and the run untouched', async () => {
    const { source } = await exportFromRun(run.plan, run.work, run.checkpoint, ops);
    const before = snapshot(run.runDir);
    const gguf = exportFormat('gguf');
    const failing: ExportFormat = {
      ...gguf,
      write: (dir, from, options) => {
        gguf.write(dir, from, options); // a whole model.gguf, then the disk fills up
        writeFileSync(join(dir, 'second-file'), 'x');
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      },
    };
    const out = join(run.work, 'full-disk');
    await expect(writeExport(out, failing, source)).rejects.toThrow('ENOSPC');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(run.work).filter((f) => f.includes('full-disk'))).toEqual([]);
    expect(snapshot(run.runDir)).toEqual(before);
    await expect(writeExport(out, { ...gguf, unavailable: 'not yet' }, source)).rejects.toThrow(ExportError);
  });
});

describe('qalc merge and the spec\'s export block', () => {
  it('writes and reports every format, says why it skips one, and never overwrites', async () => {
    const runDir = join(run.work, 'merge-run');
    mkdirSync(runDir);
    copyFileSync(run.checkpoint, join(runDir, 'checkpoint.safetensors'));
    const spec = join(run.work, 'with-export.qal');
    writeFileSync(spec, readFileSync(run.specPath, 'utf8') + '\nexport { formats = [safetensors, gguf, gptq, peft_lora] }\n');
    const elsewhere = join(run.work, 'with-out.qal');
    writeFileSync(elsewhere, readFileSync(run.specPath, 'utf8') + '\nexport {\n  formats = [qalc, gguf, peft_qalora]\n  out = "exports-here"\n}\n');
    expect(await qalc('merge', spec, '--out', runDir)).toBe(0);
    expect(stderr).toContain(`export safetensors: ${join(runDir, 'merged.safetensors')} is qalc's own format (lossless)`);
    expect(stderr).toContain(`export gguf: wrote model.gguf, export.json into ${join(runDir, 'export', 'gguf')}`);
    // GPTQ: written, its rounding measured on the run's held-out data (gate, up and down stay float: 172 × 4 bits is no whole word).
    expect(stderr).toMatch(new RegExp(`export gptq: wrote [^\\n]*gptq-export\\.json, export\\.json into ${join(runDir, 'export', 'gptq').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    expect(stderr).toMatch(/held-out loss \d\.\d+ against the lossless merged model's \d\.\d+/);
    expect(stderr).toContain(`export peft_lora: wrote adapter_config.json, adapter_model.safetensors, export.json into ${join(runDir, 'export', 'peft-lora')}`);
    const exported = snapshot(join(runDir, 'export'));
    expect(await qalc('merge', spec, '--out', runDir)).toBe(0);
    expect(stderr).toContain(`export gguf: skipped: ${join(runDir, 'export', 'gguf')} already holds a gguf export`);
    expect(snapshot(join(runDir, 'export'))).toEqual(exported);
    // `out` relative to the spec; a format that cannot hold these adapters is reported, not fatal.
    expect(await qalc('merge', elsewhere, '--out', runDir)).toBe(0);
    expect(stderr).toContain(`export qalc: ${join(runDir, 'merged.safetensors')} is qalc's own format (lossless)`);
    expect(stderr).toMatch(/export peft_qalora: skipped: PEFT's use_qalora has one qalora_group_size for every layer/);
    expect(existsSync(join(run.work, 'exports-here', 'export', 'peft-qalora'))).toBe(false);
    expect(readdirSync(join(run.work, 'exports-here', 'export', 'gguf')).sort()).toEqual(['export.json', 'model.gguf']);
  });
});
