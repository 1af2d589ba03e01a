// A spec whose own file name, model paths, data paths and output folder are hostile: line
// breaks followed by code, `*/`, quotes, backticks, `${}`, U+2028, a bidirectional override and
// NUL. `qalc compile` must write TypeScript, CUDA and WGSL that parse, hold exactly those
// strings, and run nothing of them; the generated trainer must find the files and train.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { commentSafe, relativeUrl, shellWord, tsString } from '../../src/backends/escape.ts';
import { SHARED } from '../support/inline-spec.ts';

const PAYLOAD = "process.stdout.write('PWNED')";
/** A folder or file name that tries to end every construct it may land in. */
const HOSTILE = `x\n${PAYLOAD};\n\`\${${PAYLOAD}}\` ' " \u2028${PAYLOAD} \u202e \\`;
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

function qalc(args: string[]) {
  return spawnSync(process.execPath, ['src/cli/qalc.mjs', ...args], { encoding: 'utf8' });
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

function syntaxErrors(text: string): string[] {
  const out = ts.transpileModule(text, { reportDiagnostics: true, compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  return (out.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
}

/** Every call of `callee` anywhere in the file's syntax tree (not in its strings or comments). */
function callsOf(text: string, callee: string): string[] {
  const file = ts.createSourceFile('x.ts', text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.expression.getText(file) === callee) found.push(node.getText(file));
    node.forEachChild(visit);
  };
  visit(file);
  return found;
}

/** Top-level expression statements: a generated file has one at most, train.mts's runTrainer call. */
function topLevelExpressions(text: string): string[] {
  const file = ts.createSourceFile('x.ts', text, ts.ScriptTarget.ES2022, true);
  return file.statements.filter(ts.isExpressionStatement).map((s) => s.getText(file));
}

/** What a spec string can spell (no line break, no double quote, no backslash) that still ends
 * comments, quotes, template literals and lines. */
const SPEC_HOSTILE = `m */ ' \` \${${PAYLOAD}} \u2028${PAYLOAD} \u202e`;

/**
 * A spec in a folder of hostile name, under a hostile file name, naming its checkpoint, tokenizer
 * and data by hostile relative paths (links to stories260K and tiny Shakespeare); `data` replaces
 * the data path when given.
 */
function hostileWorkspace(data = `data*/${SPEC_HOSTILE}.txt`): { root: string; spec: string } {
  const root = mkdtempSync(join(tmpdir(), 'qalc-hostile-'));
  const specDir = join(root, HOSTILE);
  const files = { checkpoint: `ck*/${SPEC_HOSTILE}.bin`, tokenizer: `tok/${SPEC_HOSTILE}.bin`, data };
  const targets = { checkpoint: 'models/stories260K/stories260K.bin', tokenizer: 'models/stories260K/tok512.bin', data: 'data/tinyshakespeare.txt' };
  for (const key of ['checkpoint', 'tokenizer', 'data'] as const) {
    if (files[key].includes('\0')) continue;
    mkdirSync(join(specDir, files[key], '..'), { recursive: true });
    symlinkSync(resolve(SHARED, targets[key]), join(specDir, files[key]));
  }
  // A project that has qalc installed (the generated code imports it by name), of the default
  // "type": "commonjs": the generated .mts files are ES modules whatever the project's type.
  writeFileSync(join(root, 'package.json'), '{ "name": "hostile-project", "private": true }\n');
  mkdirSync(join(root, 'node_modules'));
  symlinkSync(process.cwd(), join(root, 'node_modules', 'qalc'));
  const spec = join(specDir, `${HOSTILE}.qal`);
  writeFileSync(spec, [
    'spec hostile',
    `model {\n  checkpoint = "${files.checkpoint}"\n  tokenizer = "${files.tokenizer}"\n}`,
    'quant {\n  bits = 4\n  group = 4\n}',
    'adapter {\n  kind = qalora\n  rank = 4\n  alpha = 8\n}',
    `train {\n  data = "${files.data}"\n  seq_len = 16\n  batch = 2\n  eval_every = 1\n}`,
    '',
  ].join('\n'));
  return { root, spec };
}

describe('escaping rules', () => {
  it('string literals evaluate to the same string, on one line, with nothing invisible', () => {
    const text = `${HOSTILE}\0\r\u2029`;
    const literal = tsString(text);
    expect(literal).not.toMatch(/\n/);
    expect(literal).not.toMatch(INVISIBLE);
    expect(new Function(`return ${literal};`)()).toBe(text);
  });

  it('shell words read back as the same text and are safe in a comment', () => {
    for (const text of [HOSTILE, 'plain/path.qal', 'with space', "it's", 'a*/b', 'é', '$(touch x)']) {
      const word = shellWord(text);
      expect(word).toMatch(/^[\x20-\x7e]+$/);
      expect(word).not.toContain('*/');
      expect(word.endsWith('\\')).toBe(false);
      const echoed = spawnSync('bash', ['-c', `printf %s ${word}`], { encoding: 'utf8' });
      expect(echoed.stdout).toBe(text);
    }
  });

  it('comments get printable ASCII with no line end, comment end or trailing backslash', () => {
    expect(commentSafe('a\nb\r\u2028c\\*/é')).toBe('a?b??c/*??');
  });

  it('relative URLs resolve back to the same path', () => {
    const path = `../${HOSTILE}/a #?%b/m.ts`;
    const url = relativeUrl(path);
    expect(url).toMatch(/^[A-Za-z0-9._~%/-]+$/);
    expect(decodeURIComponent(new URL(url, 'file:///r/s/t/').pathname)).toBe(`/r/s/${HOSTILE}/a #?%b/m.ts`);
  });
});

describe('qalc compile of a spec with hostile names and paths', () => {
  it('writes code that parses, holds the exact strings, runs nothing of them, and trains', () => {
    const { root, spec } = hostileWorkspace();
    // (Not '?': tsx cuts a module's file name at one, whatever its encoding.)
    const out = join(root, `out ' # % \n${PAYLOAD}`);
    const compiled = qalc(['compile', spec, '--out', out, '--no-build']);
    expect(compiled.status, compiled.stderr).toBe(0);

    const files = filesUnder(out);
    expect(files.filter((f) => f.endsWith('.mts')).length).toBeGreaterThanOrEqual(3);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(INVISIBLE);
      if (file.endsWith('.mts')) {
        expect(syntaxErrors(text), file).toEqual([]);
        expect(topLevelExpressions(text).filter((s) => !s.startsWith('process.exitCode = await runTrainer(')), file).toEqual([]);
        expect(callsOf(text, 'process.stdout.write'), file).toEqual([]);
      }
      if (file.endsWith('.cu') || file.endsWith('.wgsl')) {
        for (const line of text.split('\n').filter((l) => l.includes('PWNED'))) {
          expect(line, file).toMatch(/^\/\/ /);
          expect(line, file).not.toMatch(/\*\/.*PWNED/);
        }
      }
    }

    // The command line a header quotes reads back, in a shell, as the spec's path.
    const cuda = files.find((f) => f.endsWith('.cu'))!;
    const regenerate = /^\/\/ Regenerate: qalc compile (.+)$/m.exec(readFileSync(cuda, 'utf8'))![1]!;
    expect(spawnSync('bash', ['-c', `printf %s ${regenerate}`], { encoding: 'utf8' }).stdout).toBe(spec);

    // model.mts, imported, holds the paths exactly.
    const probe = join(root, 'probe.mts');
    writeFileSync(probe, `import { plan } from ${tsString(`./${relativeUrl(out.slice(root.length + 1))}/model.mts`)};\nconsole.log(JSON.stringify([plan.specFile, plan.model.checkpoint?.path, plan.model.tokenizer, plan.train?.data]));\n`);
    const imported = spawnSync(process.execPath, ['--import', 'tsx', probe], { encoding: 'utf8', cwd: process.cwd() });
    expect(imported.status, imported.stderr).toBe(0);
    const plan = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8'));
    expect(JSON.parse(imported.stdout)).toEqual([plan.specFile, plan.model.checkpoint.path, plan.model.tokenizer, plan.train.data]);
    expect(plan.specFile).toBe(spec);

    // The trainer runs nothing it should not, finds every file through the hostile folders, trains.
    const run = join(out, 'run');
    const trained = spawnSync(process.execPath, ['--import', 'tsx', join(out, 'train.mts'), '--steps', '1', '--out', run], { encoding: 'utf8' });
    expect(trained.stdout).not.toContain('PWNED');
    expect(trained.status, trained.stderr).toBe(0);
    expect(readFileSync(join(run, 'train.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
  }, 120_000);

  it('refuses NUL in a path, and takes `*/` and U+2028 in one the spec only names (data not there yet)', () => {
    const nul = hostileWorkspace(`no\0such.txt`);
    const refused = qalc(['compile', nul.spec, '--out', join(nul.root, 'out'), '--no-build']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/\.qal:16:\d+: error: .*NUL/);

    const { root, spec } = hostileWorkspace(`not there*/\u2028${SPEC_HOSTILE}.txt`);
    const out = join(root, 'out');
    const compiled = qalc(['compile', spec, '--out', out, '--no-build']);
    expect(compiled.status, compiled.stderr).toBe(0);
    for (const file of filesUnder(out).filter((f) => f.endsWith('.mts'))) {
      const text = readFileSync(file, 'utf8');
      expect(text).not.toMatch(INVISIBLE);
      expect(syntaxErrors(text), file).toEqual([]);
      expect(topLevelExpressions(text).filter((s) => !s.startsWith('process.exitCode = await runTrainer(')), file).toEqual([]);
    }
    const plan = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8'));
    expect(plan.train.data).toContain('not there*/\u2028m */');
  }, 60_000);
});
