// Reads a spec and the files it includes. `include "common.qal"` splices that file's
// statements in at that point; a relative path is relative to the including file, an absolute
// one is used as it is. The result is the statements of all files in order, with the text of
// each file kept for error messages.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { error, fileSpan, type Diagnostic, type SourceSpan } from '../diagnostics/diagnostic.ts';
import type { SourceFile, Statement } from './ast.ts';
import { parseSource } from './parse.ts';

export interface LoadedSpec {
  readonly entry: string;
  /** Every file read, entry first, in the order they were included. */
  readonly files: readonly SourceFile[];
  /** Statements of all files, includes expanded in place. */
  readonly statements: readonly Statement[];
  readonly diagnostics: Diagnostic[];
  /** Paths of files that had syntax errors: checks that need a whole file hold back there. */
  readonly filesWithSyntaxErrors: ReadonlySet<string>;
}

const MAX_INCLUDE_DEPTH = 16;

export type ReadText = (path: string) => string;

const readUtf8: ReadText = (path) => readFileSync(path, 'utf8');

export function loadSpec(entry: string, readText: ReadText = readUtf8): LoadedSpec {
  const files: SourceFile[] = [];
  const statements: Statement[] = [];
  const diagnostics: Diagnostic[] = [];
  const filesWithSyntaxErrors = new Set<string>();

  const visit = (path: string, includedFrom: SourceSpan | undefined, stack: readonly string[]): void => {
    const absolute = resolve(path);
    if (stack.includes(absolute)) {
      diagnostics.push(error(includedFrom!, `'${path}' includes itself`, 'remove the include that closes the cycle'));
      return;
    }
    if (stack.length >= MAX_INCLUDE_DEPTH) {
      diagnostics.push(error(includedFrom!, `includes nest deeper than ${MAX_INCLUDE_DEPTH} files`));
      return;
    }
    let text: string;
    try {
      text = readText(path);
    } catch (e) {
      const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : `cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
      diagnostics.push(error(includedFrom ?? fileSpan(path), `cannot read spec '${path}': ${reason}`));
      return;
    }
    const nul = text.indexOf('\0');
    if (nul >= 0) {
      // A binary file would give an error for nearly every byte; one says more.
      const line = (text.slice(0, nul).match(/\n/g)?.length ?? 0) + 1;
      diagnostics.push(error({ file: path, line, col: nul - text.lastIndexOf('\n', nul), offset: nul, length: 1 },
        'not a spec: a NUL byte, so this is a binary file', 'a spec is UTF-8 text: statements such as `quant { bits = 4 }`'));
      filesWithSyntaxErrors.add(path);
      return;
    }
    const parsed = parseSource(text, path);
    files.push(parsed.file);
    diagnostics.push(...parsed.diagnostics);
    if (parsed.diagnostics.length > 0) filesWithSyntaxErrors.add(path);
    for (const statement of parsed.file.statements) {
      if (statement.kind === 'include') {
        const included = isAbsolute(statement.path) ? statement.path : join(dirname(path), statement.path);
        visit(included, statement.pathSpan, [...stack, absolute]);
      } else {
        statements.push(statement);
      }
    }
  };

  visit(entry, undefined, []);
  return { entry, files, statements, diagnostics, filesWithSyntaxErrors };
}

export function sourcesOf(loaded: Pick<LoadedSpec, 'files'>): Map<string, string> {
  return new Map(loaded.files.map((f) => [f.path, f.text]));
}
