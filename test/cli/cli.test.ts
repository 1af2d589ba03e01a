// The qalc command as a user runs it: a real process, its exit status, stdout and stderr.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { writeLlama2c } from '../support/llama2c-file.ts';

function qalc(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['src/cli/qalc.mjs', ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024, // an inspect --html page is megabytes
    env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '', ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('qalc', () => {
  it('check is silent and exits 0 on a clean spec', () => {
    expect(qalc(['check', 'examples/stories260k.qal', 'examples/llama-13b-mixed.qal'])).toEqual({ status: 0, stdout: '', stderr: '' });
  });

  it('check prints compiler-style errors and exits 1', () => {
    const r = qalc(['check', 'examples/broken.qal']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('examples/broken.qal:6:16: error: hidden_dim = 11000 disagrees with preset llama2_7b');
    expect(r.stderr).toContain(" 20 |   projections = [q, k, v, gaet]\n    |                           ^^^^\nhint: did you mean 'gate'?");
    expect(r.stderr).toMatch(/\d+ errors, 1 warning\n$/);
    expect(r.stderr).not.toContain('\x1b['); // no colour when not on a terminal
    expect(r.stderr).not.toMatch(/\n\s+at /); // never a stack trace for a user's mistake
  });

  it('colours only when asked to, or on a terminal', () => {
    expect(qalc(['check', 'examples/broken.qal'], { FORCE_COLOR: '1' }).stderr).toContain('\x1b[1;31merror');
  });

  it('has --help for every verb', () => {
    for (const verb of ['check', 'inspect', 'fmt', 'compile']) {
      const r = qalc([verb, '--help']);
      expect(r.status, verb).toBe(0);
      expect(r.stdout).toContain(`usage: qalc ${verb}`);
    }
    expect(qalc(['--help']).stdout).toContain('Exit status: 0 clean, 1 errors in the spec or the command line, 2 a bug in qalc.');
  });

  it('exits 1 with usage help on a bad command line', () => {
    expect(qalc(['chekc', 'x.qal'])).toMatchObject({ status: 1, stderr: expect.stringContaining("unknown verb 'chekc'") });
    expect(qalc(['check', '--frobnicate', 'x.qal'])).toMatchObject({ status: 1, stderr: expect.stringContaining("Unknown option '--frobnicate'") });
    expect(qalc(['check'])).toMatchObject({ status: 1, stderr: expect.stringContaining('check needs at least one spec file') });
    expect(qalc(['check', 'no/such.qal'])).toMatchObject({ status: 1, stderr: expect.stringContaining("no/such.qal:1:1: error: cannot read spec 'no/such.qal': no such file") });
    expect(qalc(['generate', 'x.bin', '--seed', '0'])).toMatchObject({ status: 1, stderr: expect.stringContaining('--seed must be a positive integer') });
    // A message of several lines keeps its lines; only control characters are escaped.
    expect(qalc(['generate', 'x.bin', '--temperature', '-1']).stderr).toMatch(/is ambiguous\.\nDid you forget/);
  });

  it('exits 2, saying it is a bug, when qalc itself fails', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const crash = { name: 'crash', summary: '', usage: '', options: {}, optionHelp: {}, run: () => { throw new TypeError('x is undefined'); } };
    expect(await main(['crash'], [crash])).toBe(2);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toContain('internal error — this is a bug in qalc');
    stderr.mockRestore();
  });

  it('exits 1, naming the file, when the operating system refuses a path the user gave', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const file = join(mkdtempSync(join(tmpdir(), 'qalc-')), 'a-file');
    writeFileSync(file, '');
    const mkdirOverFile = { name: 'mkdir', summary: '', usage: '', options: {}, optionHelp: {}, run: () => { mkdirSync(file); return 0; } };
    expect(await main(['mkdir'], [mkdirOverFile])).toBe(1);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toBe(`qalc mkdir: cannot mkdir '${file}': it already exists\n`);
    stderr.mockRestore();
  });

  it('generate names a checkpoint or tokenizer it cannot read, or one it cannot run, with exit 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qalc-generate-'));
    const tokenizer = '../shared/models/stories260K/tok512.bin';
    const missing = qalc(['generate', join(dir, 'missing.bin'), '--tokenizer', tokenizer]);
    expect(missing).toMatchObject({ status: 1, stderr: `qalc generate: ${join(dir, 'missing.bin')}: cannot read the checkpoint: no such file\n` });
    expect(qalc(['generate', dir, '--tokenizer', tokenizer])).toMatchObject({ status: 1, stderr: `qalc generate: ${dir}: a folder without config.json: not a Hugging Face model directory (a llama2.c checkpoint is a file)\n` });
    const odd = writeLlama2c(join(dir, 'odd.bin'), { dim: 6, hiddenDim: 8, layers: 1, heads: 2, kvHeads: 2, vocab: 512, context: 4, tiedEmbeddings: true, ropeTheta: 10000, rmsNormEps: 1e-5 }, 5000);
    expect(qalc(['generate', odd, '--tokenizer', tokenizer])).toMatchObject({ status: 1, stderr: `qalc generate: ${odd}: the head size is odd: dim = 6 / n_heads = 2 = 3, and RoPE rotates pairs of dimensions\n` });
    const arch = { dim: 16, hiddenDim: 32, layers: 1, heads: 2, kvHeads: 2, vocab: 512, context: 16, tiedEmbeddings: true, ropeTheta: 10000, rmsNormEps: 1e-5 };
    const nan = writeLlama2c(join(dir, 'nan.bin'), arch, 10_928, { 8200: NaN });
    expect(qalc(['generate', nan, '--tokenizer', tokenizer])).toMatchObject({ status: 1, stderr: `qalc generate: ${nan}: tensor layers.0.rms_att [16] holds NaN at [8]: the checkpoint is damaged, or was saved from a run that diverged\n` });
    // Finite weights near float32's largest value: the logits overflow, and generate says so rather than printing <unk>.
    const huge = writeLlama2c(join(dir, 'huge.bin'), arch, 10_928, Object.fromEntries(Array.from({ length: 16 + 256 }, (_, i) => [8192 + i, i % 3 === 0 ? -3e38 : 3e38])));
    expect(qalc(['generate', huge, '--tokenizer', tokenizer, '--steps', '4'])).toMatchObject({ status: 1, stdout: '', stderr: `qalc generate: the model's logits are NaN at position 0: its activations overflow float32 (weights too large?)\n` });
    const noTokenizer = qalc(['generate', '../shared/models/stories260K/stories260K.bin', '--tokenizer', join(dir, 'tok.bin'), '--steps', '2']);
    expect(noTokenizer).toMatchObject({ status: 1, stderr: `qalc generate: ${join(dir, 'tok.bin')}: cannot read the tokenizer: no such file\n` });
  });

  it('inspect shows the plan with sizes and totals, or as JSON', () => {
    const table = qalc(['inspect', 'examples/llama-7b-int4-g32.qal']);
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/0\.\.31\s+q\s+4096×4096\s+4\s+32\s+qalora r64\s+256\.00\s+32\.00\s+8\.00\s+33\.00\s+1024\.00/);
    expect(table.stdout).toContain('whole model');
    // The sizes say which dtypes they count: the fp16 scales are the ones trained with.
    expect(table.stdout).toContain('stored as       GPTQ-packed codes, fp16 scales (the values trained with), packed integer zeros;');
    const plan = JSON.parse(qalc(['inspect', 'examples/llama-7b-int4-g32.qal', '--json']).stdout) as { layers: unknown[] };
    expect(plan.layers).toHaveLength(224);
    expect(qalc(['inspect', 'examples/stories260k.qal', '--all']).stdout.split('\n').filter((l) => /^\d+\s/.test(l))).toHaveLength(35);
  });

  it('compile writes plan.json, byte-identical on every run', () => {
    const out = mkdtempSync(join(tmpdir(), 'qalc-'));
    // --no-build: nvcc on a cold cache takes minutes for this spec (test/cli/compile-build.test.ts tests the build).
    expect(qalc(['compile', 'examples/llama-13b-mixed.qal', '--out', join(out, 'a'), '--no-build']).status).toBe(0);
    expect(qalc(['compile', 'examples/llama-13b-mixed.qal', '--out', join(out, 'b'), '--no-build']).status).toBe(0);
    const a = readFileSync(join(out, 'a', 'plan.json'), 'utf8');
    expect(readFileSync(join(out, 'b', 'plan.json'), 'utf8')).toBe(a);
    expect(JSON.parse(a)).toMatchObject({ spec: 'llama_13b_mixed', model: { preset: 'llama_13b' } });
  });

  it('fmt checks, prints and rewrites', () => {
    expect(qalc(['fmt', '--check', 'examples/stories260k.qal', 'examples/llama2-7b-int4-g32.qal'])).toMatchObject({ status: 0, stdout: '' });
    const dir = mkdtempSync(join(tmpdir(), 'qalc-fmt-'));
    const messy = join(dir, 'messy.qal');
    writeFileSync(messy, 'spec m\nmodel{preset=llama_7b}\nquant{bits=4 group=32}\n');
    expect(qalc(['fmt', '--check', messy])).toMatchObject({ status: 1, stdout: `${messy}\n` });
    expect(qalc(['fmt', messy]).stdout).toBe('spec m\n\nmodel {\n  preset = llama_7b\n}\n\nquant {\n  bits = 4\n  group = 32\n}\n');
    expect(qalc(['fmt', '--write', messy]).status).toBe(0);
    expect(qalc(['fmt', '--check', messy]).status).toBe(0);
    // A file that does not parse is never rewritten.
    copyFileSync('examples/broken.qal', join(dir, 'broken.qal'));
    expect(qalc(['fmt', '--write', join(dir, 'broken.qal')]).status).toBe(1);
    expect(readFileSync(join(dir, 'broken.qal'), 'utf8')).toBe(readFileSync('examples/broken.qal', 'utf8'));
  });
});

describe('qalc generate', () => {
  it("reads a Hugging Face directory and its tokenizer.json: stories260K-hf prints transformers' greedy text", () => {
    const hf = '../shared/models/stories260K-hf';
    const expected = `${readFileSync(join(hf, 'greedy_256_transformers.txt'), 'utf8')}\n`;
    expect(qalc(['generate', hf, '--steps', '255'])).toMatchObject({ status: 0, stdout: expected });
    for (const tokenizer of ['../shared/models/stories260K/tok512.bin', '../shared/models/stories260K/tok512.model']) {
      expect(qalc(['generate', hf, '--tokenizer', tokenizer, '--steps', '255'])).toMatchObject({ status: 0, stdout: expected });
    }
    const prompted = qalc(['generate', hf, '--steps', '40', '--prompt', 'Once upon a time, Lily']);
    expect(prompted.stdout.startsWith('Once upon a time, Lily')).toBe(true);
  });

  it('refuses a tokenizer of another vocabulary or none, naming the files, exit 1', () => {
    const hf = '../shared/models/stories260K-hf';
    expect(qalc(['generate', hf, '--tokenizer', '../shared/models/llama2-tokenizer/tokenizer.json'])).toMatchObject({
      status: 1, stderr: expect.stringContaining('llama2-tokenizer/tokenizer.json: the tokenizer has 32000 tokens but ../shared/models/stories260K-hf has a vocabulary of 512'),
    });
    const bare = mkdtempSync(join(tmpdir(), 'qalc-hf-bare-'));
    for (const file of ['config.json', 'model.safetensors']) copyFileSync(join(hf, file), join(bare, file));
    expect(qalc(['generate', bare])).toMatchObject({ status: 1, stderr: expect.stringContaining('has no tokenizer.json or tokenizer.model: give one with --tokenizer FILE') });
  });

  it('prints only the text on stdout, and its speed on stderr', () => {
    const r = qalc(['generate', '../shared/models/stories260K/stories260K.bin', '--tokenizer', '../shared/models/stories260K/tok512.bin', '--steps', '20', '--prompt', 'Once upon a time']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.startsWith('Once upon a time')).toBe(true);
    const speed = /^generated (\d+) tokens \((\d+) of them the prompt\) in ([\d.]+) s: ([\d,]+) tokens\/s$/m.exec(r.stderr);
    expect(speed, r.stderr).not.toBeNull();
    expect(Number(speed![1])).toBe(20); // --steps counts forward passes, one a token
    expect(Number(speed![2])).toBeGreaterThan(0);
    expect(Number(speed![4].replace(/,/g, ''))).toBeGreaterThan(0);
  });

  it('runs on cpu unless told otherwise; --backend cuda takes a spec, and no other backend is taken', () => {
    const bin = '../shared/models/stories260K/stories260K.bin';
    expect(qalc(['generate', bin, '--backend', 'webgpu'])).toMatchObject({ status: 1, stderr: expect.stringContaining("qalc generate: --backend must be cpu or cuda for generate, not 'webgpu'") });
    expect(qalc(['generate', bin, '--backend', 'cuda'])).toMatchObject({ status: 1, stderr: expect.stringContaining('qalc generate: --backend cuda takes a spec') });
    expect(qalc(['generate', bin, '--kernels', 'k'])).toMatchObject({ status: 1, stderr: expect.stringContaining('--kernels goes with --backend cuda') });
    const cpu = qalc(['generate', bin, '--tokenizer', '../shared/models/stories260K/tok512.bin', '--steps', '8', '--backend', 'cpu']);
    expect(cpu.status, cpu.stderr).toBe(0);
    expect(cpu.stdout).toBe(qalc(['generate', bin, '--tokenizer', '../shared/models/stories260K/tok512.bin', '--steps', '8']).stdout);
  });

  it('--random-weights generates from a spec without a checkpoint, as train draws its weights; without it, says what is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qalc-generate-random-'));
    const spec = join(dir, 'tiny.qal');
    writeFileSync(spec, `spec tiny_random
model {
  dim = 64  hidden_dim = 172  layers = 2  heads = 8  kv_heads = 4  vocab = 512  context = 64
  tokenizer = ${JSON.stringify(resolve('../shared/models/stories260K/tok512.bin'))}
}
quant { bits = 4  group = 16 }
override proj down { group = 43 }
adapter { kind = qalora  rank = 4  alpha = 8 }
train { data = ${JSON.stringify(resolve('../shared/data/tinyshakespeare.txt'))} }
`);
    const r = qalc(['generate', spec, '--random-weights', '--steps', '6']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('WARNING: RANDOM WEIGHTS');
    expect(r.stderr).toMatch(/^generated \d+ tokens/m);
    expect(qalc(['generate', spec, '--random-weights', '--steps', '6']).stdout).toBe(r.stdout);
    expect(qalc(['generate', spec, '--steps', '6'])).toMatchObject({ status: 1, stderr: expect.stringContaining('--random-weights') });
  });
});

describe('qalc inspect, the later stages', () => {
  it('lists the kernels, prints one, and shows the IR after a pass', () => {
    const list = qalc(['inspect', 'examples/stories260k.qal', '--stage', 'wgsl']);
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/^forward_k172_n64_b4_g43_qalora_r4_mean_f32\s+forward\s+5 layers {2}examples\/stories260k\.qal:11/m);
    const kernel = qalc(['inspect', 'examples/stories260k.qal', '--kernel', 'forward_k172_n64_b4_g43_qalora_r4_mean_bf16']);
    expect(kernel.stdout).toContain('extern "C"');
    expect(kernel.stdout).toBe(readFileSync('generated/stories260k/cuda/forward_k172_n64_b4_g43_qalora_r4_mean_bf16.cu', 'utf8'));
    // A model op by its name too: generation's decode attention.
    expect(qalc(['inspect', 'examples/stories260k.qal', '--kernel', 'decode_attention_h8_kv4_d8']).stdout).toBe(readFileSync('generated/stories260k/cuda/ops/decode_attention_h8_kv4_d8.cu', 'utf8'));
    const ir = qalc(['inspect', 'examples/stories260k.qal', '--stage', 'ir', '--target', 'wgsl', '--pass', 'fuseAdapterEpilogue']);
    expect(ir.stdout.split('\n')[0]).toBe('// after fuseAdapterEpilogue');
    expect(JSON.parse(ir.stdout.slice(ir.stdout.indexOf('\n') + 1))).toMatchObject({ target: 'wgsl', spec: 'stories260k' });
    const cudaPass = qalc(['inspect', 'examples/stories260k.qal', '--stage', 'ir', '--target', 'cuda', '--pass', 'chooseCudaKernels']);
    expect(cudaPass.stdout.split('\n')[0]).toBe('// after chooseCudaKernels');
    expect(JSON.parse(cudaPass.stdout.slice(cudaPass.stdout.indexOf('\n') + 1)).kernels[0].cuda.launches.length).toBeGreaterThan(0);
    const sources = qalc(['inspect', 'examples/stories260k.qal', '--stage', 'wgsl', '--sources']).stdout;
    const down = 'forward_k172_n64_b4_g43_qalora_r4_mean_f32.wgsl';
    expect(sources.match(/^\/\/ ===== wgsl\//gm)).toHaveLength(31);
    expect(sources).toContain(`// ===== wgsl/${down}\n${readFileSync(`generated/stories260k/wgsl/${down}`, 'utf8')}`);
    expect(qalc(['inspect', 'examples/stories260k.qal', '--kernel', 'forwad_k172_n64_b4_g43_qalora_r4_mean_bf16'])).toMatchObject({
      status: 1, stderr: expect.stringContaining("did you mean 'forward_k172_n64_b4_g43_qalora_r4_mean_bf16'?"),
    });
  });

  it('--html writes one page to a file or to stdout, and refuses what it cannot show', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qalc-html-'));
    const file = join(dir, 'page.html');
    const written = qalc(['inspect', 'examples/stories260k.qal', '--html', file]);
    expect(written).toMatchObject({ status: 0, stdout: '', stderr: `wrote ${file}: the spec, 35 layers, 31 CUDA and 31 WGSL kernels\n` });
    const page = readFileSync(file, 'utf8');
    expect(page).toMatch(/^<!doctype html>/);
    expect(qalc(['inspect', 'examples/stories260k.qal', '--html']).stdout).toBe(page);
    expect(qalc(['inspect', 'examples/stories260k.qal', '--html', '--json'])).toMatchObject({ status: 1, stderr: expect.stringContaining('--html shows every stage on one page: it takes no --json') });
    expect(qalc(['inspect', '--html', 'examples/stories260k.qal'])).toMatchObject({ status: 1, stderr: expect.stringContaining("--html took 'examples/stories260k.qal' as the page to write: put the spec first") });
    const spec = join(dir, 's.qal');
    copyFileSync('examples/llama-7b-int4-g32.qal', spec);
    expect(qalc(['inspect', spec, '--html', spec])).toMatchObject({ status: 1, stderr: expect.stringContaining('would overwrite the spec itself') });
    expect(readFileSync(spec, 'utf8')).toBe(readFileSync('examples/llama-7b-int4-g32.qal', 'utf8'));
    expect(qalc(['inspect', '--help']).stdout).toMatch(/--html \[FILE\]\s+write the HTML page to FILE/);
  });
});

describe('qalc check on hostile or huge input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qalc-check-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('prints the first 20 errors and a count, however many there are', () => {
    const junk = file('junk.qal', 'spec j\nmodel { preset = llama2_7b }\nquant { bits = 4  group = 32 }\n' + '@ ; $\n'.repeat(5000));
    const r = qalc(['check', junk]);
    expect(r.status).toBe(1);
    expect(r.stderr.match(/: error: /g)).toHaveLength(20);
    expect(r.stderr).toMatch(/\n… and 14,980 more errors, not shown \(`qalc check --max-errors 0` shows them all\)\n15,000 errors, 0 warnings\n$/);
    expect(r.stderr.length).toBeLessThan(4000);
    expect(qalc(['check', '--max-errors', '0', junk]).stderr.match(/: error: /g)).toHaveLength(15_000);
    expect(qalc(['check', '--max-errors', 'x', junk])).toMatchObject({ status: 1, stderr: expect.stringContaining("--max-errors must be a non-negative integer, not 'x'") });
  });

  it('never lets a spec write terminal escapes to stderr', () => {
    const r = qalc(['check', file('esc.qal', 'spec e\nmodel { preset = "\x1b]0;owned\x07\x1b[2J" }\nquant { bits = 4  group = 32 }\n')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("unknown preset '\\x1b]0;owned\\x07\\x1b[2J'");
    expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
  });

  it('inspect prints a checkpoint path with control characters escaped', () => {
    const checkpoint = join(dir, 'odd\x1b[2Jname.bin');
    copyFileSync('../shared/models/stories260K/stories260K.bin', checkpoint);
    const r = qalc(['inspect', file('path.qal', `spec p\nmodel { checkpoint = "${checkpoint}" }\nquant { bits = 4  group = 4 }\n`)]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`odd\\x1b[2Jname.bin: dim 64`);
    expect(r.stdout).not.toContain('\x1b');
  });

  it('--json gives every diagnostic as data on stdout, and the same exit status', () => {
    const r = qalc(['check', '--json', 'examples/broken.qal', 'examples/stories260k.qal', join(dir, 'missing.qal')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('');
    const document = JSON.parse(r.stdout) as { diagnostics: Record<string, unknown>[]; errors: number; warnings: number; omitted: { errors: number; warnings: number } };
    expect(document.diagnostics).toContainEqual({
      file: 'examples/broken.qal', line: 20, column: 27, endLine: 20, endColumn: 31, severity: 'error',
      message: "'gaet' is not a value of projections: expected 'q', 'k', 'v', 'o', 'gate', 'up' or 'down'", hint: "did you mean 'gate'?",
    });
    expect(document.diagnostics).toContainEqual(expect.objectContaining({ file: 'examples/broken.qal', line: 23, severity: 'warning', hint: null }));
    expect(document.diagnostics).toContainEqual(expect.objectContaining({ file: join(dir, 'missing.qal'), line: 1, column: 1, message: `cannot read spec '${join(dir, 'missing.qal')}': no such file` }));
    expect(document.errors).toBe(document.diagnostics.filter((d) => d.severity === 'error').length);
    expect(document.warnings).toBe(1);
    expect(document.omitted).toEqual({ errors: 0, warnings: 0 });
    expect(JSON.parse(qalc(['check', '--json', 'examples/stories260k.qal']).stdout)).toEqual({ diagnostics: [], errors: 0, warnings: 0, omitted: { errors: 0, warnings: 0 } });
  });

  it('keeps its exit status when whoever reads stderr stops reading', async () => {
    const warnsOnly = file('warns.qal', 'spec w\nmodel { preset = llama2_7b }\nquant { bits = 4  group = 32 }\n' + 'override layers 40 { bits = 8 }\n'.repeat(30));
    const errs = file('errs.qal', 'spec j\nmodel { preset = llama2_7b }\nquant { bits = 4  group = 32 }\n' + '@\n'.repeat(50));
    const statusWithClosedStderr = (args: string[]) => new Promise<number | null>((done) => {
      const child = spawn(process.execPath, ['src/cli/qalc.mjs', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr.destroy(); // the reader goes away before qalc writes a byte
      child.on('exit', (code) => done(code));
    });
    expect(await statusWithClosedStderr(['check', warnsOnly])).toBe(0);
    expect(await statusWithClosedStderr(['check', errs])).toBe(1);
  });
});
