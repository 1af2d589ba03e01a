// Source text → AST, reporting every syntax error in the file in one pass.
//
// The token stream is split into statements at statement keywords, and each statement is
// parsed on its own with chevrotain's error recovery: a broken statement costs only itself.
// A statement keyword at the start of a line that clearly opens a new statement (`quant {`)
// also ends an unclosed block, reported as a missing '}'.
import type { IToken } from 'chevrotain';
import * as T from '../../grammars/qal/tokens.ts';
import { qalParser } from '../../grammars/qal/parser.ts';
import { error, type Diagnostic } from '../diagnostics/diagnostic.ts';
import { didYouMean } from '../diagnostics/suggest.ts';
import type { Comment, SourceFile, Statement } from './ast.ts';
import { AstBuilder } from './cst-to-ast.ts';
import { isRealToken, spanAfter, tokenSpan } from './span.ts';

export interface ParseResult {
  readonly file: SourceFile;
  readonly diagnostics: Diagnostic[];
}

const STATEMENT_WORDS = new Set<string>(T.STATEMENT_KEYWORDS);

function isStatementKeyword(token: IToken): boolean {
  return STATEMENT_WORDS.has(token.tokenType.name.toLowerCase()) && token.tokenType !== T.Identifier;
}

/** Does this keyword, first on its line, open a statement rather than name a setting? */
function opensStatement(tokens: readonly IToken[], i: number): boolean {
  const here = tokens[i]!;
  const next = tokens[i + 1];
  if (i > 0 && tokens[i - 1]!.endLine === here.startLine) return false;
  switch (here.tokenType) {
    case T.Spec: return next?.tokenType === T.Identifier;
    case T.Include: return next?.tokenType === T.StringLiteral;
    case T.Override: return next?.tokenType === T.Layers || next?.tokenType === T.Proj;
    case T.Target: return tokens[i + 2]?.tokenType === T.LCurly;
    default: return next?.tokenType === T.LCurly;
  }
}

interface Segment {
  readonly tokens: IToken[];
  /** Cut short by the next statement: its missing '}' is already reported. */
  unclosed: boolean;
}

/** A statement is complete once `spec NAME` / `include "…"` has its word, or its block closed. */
function isComplete(tokens: readonly IToken[], depth: number): boolean {
  const first = tokens[0]!;
  if (first.tokenType === T.Spec || first.tokenType === T.Include) return tokens.length >= 2;
  return depth === 0 && tokens[tokens.length - 1]?.tokenType === T.RCurly;
}

function splitStatements(tokens: readonly IToken[], file: string, diagnostics: Diagnostic[]): Segment[] {
  const segments: Segment[] = [];
  let current: Segment | undefined;
  let depth = 0;
  let openedAt: IToken | undefined;
  let strayStart: IToken | undefined;
  const flushStray = () => {
    if (!strayStart) return;
    const hint = strayStart.tokenType === T.Identifier || strayStart.tokenType.CATEGORIES?.includes(T.Name)
      ? didYouMean(strayStart.image, T.STATEMENT_KEYWORDS)
      : undefined;
    diagnostics.push(error(tokenSpan(file, strayStart),
      `expected a statement (${T.STATEMENT_KEYWORDS.join(', ')}) but found '${strayStart.image}'`,
      hint ?? 'a file is a list of statements such as `quant { bits = 4 }`'));
    strayStart = undefined;
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const startsHere = isStatementKeyword(token) && (depth === 0 || opensStatement(tokens, i));
    if (startsHere) {
      if (depth > 0 && openedAt && current) {
        current.unclosed = true;
        diagnostics.push(error(tokenSpan(file, openedAt), `missing '}' to close the block opened here`,
          `the block ends before '${token.image}' on line ${token.startLine}`));
      }
      flushStray();
      current = { tokens: [], unclosed: false };
      segments.push(current);
      depth = 0;
    } else if (current && isComplete(current.tokens, depth)) {
      current = undefined;
    }
    if (!current) {
      strayStart ??= token;
      continue;
    }
    if (token.tokenType === T.LCurly) {
      if (depth === 0) openedAt = token;
      depth++;
    } else if (token.tokenType === T.RCurly) {
      depth = Math.max(0, depth - 1);
    }
    current.tokens.push(token);
  }
  flushStray();
  return segments;
}

/** U+FEFF at the very start: a UTF-8 byte order mark, which some editors write. */
const BYTE_ORDER_MARK = '\uFEFF';

/** `file.text` is the text without a byte order mark: spans and excerpts count from after it. */
export function parseSource(source: string, path: string): ParseResult {
  const text = source.startsWith(BYTE_ORDER_MARK) ? source.slice(BYTE_ORDER_MARK.length) : source;
  const diagnostics: Diagnostic[] = [];
  const lexed = T.qalLexer.tokenize(text);
  for (const e of lexed.errors) {
    const character = text.slice(e.offset, e.offset + e.length);
    const shown = character.length === 1 && /[\x20-\x7e]/.test(character) ? `'${character}'` : JSON.stringify(character);
    const hint = character.startsWith('"')
      ? 'strings end on the line they start, with a closing "'
      : character === ':' ? 'settings are written `key = value`' : character === ';' ? 'settings need no separator: one per line' : undefined;
    diagnostics.push(error(
      { file: path, line: e.line ?? 1, col: e.column ?? 1, offset: e.offset, length: Math.max(1, e.length) },
      `unexpected character ${shown.length > 40 ? shown.slice(0, 40) + '…' : shown}`, hint));
  }
  for (const slash of (lexed.groups.slashComments ?? []) as IToken[]) {
    diagnostics.push(error(tokenSpan(path, slash), "comments start with '#', not '//'", `write #${slash.image.slice(2)}`));
  }
  const comments: Comment[] = (lexed.groups.comments ?? []).map((t: IToken) => ({ text: t.image, span: tokenSpan(path, t) }));

  const builder = new AstBuilder(path);
  const statements: Statement[] = [];
  for (const segment of splitStatements(lexed.tokens, path, diagnostics)) {
    qalParser.input = segment.tokens;
    const cst = qalParser.statement();
    const linesWithError = new Set<number>();
    for (const e of qalParser.errors) {
      if (segment.unclosed && e.message.startsWith("expected '}'")) continue;
      const at = isRealToken(e.token) ? tokenSpan(path, e.token) : spanAfter(path, segment.tokens[segment.tokens.length - 1]!);
      // Recovery after one mistake often trips over the rest of its line: report the first.
      if (linesWithError.has(at.line)) continue;
      linesWithError.add(at.line);
      diagnostics.push(error(at, e.message, syntaxHint(e.message, e.token)));
    }
    const statement = cst ? builder.statement(cst) : undefined;
    if (statement) statements.push(statement);
  }
  diagnostics.sort((a, b) => a.span.offset - b.span.offset);
  return { file: { path, text, statements, comments }, diagnostics };
}

function syntaxHint(message: string, token: IToken): string | undefined {
  if (isRealToken(token) && token.tokenType === T.HyphenatedWord) return `names are letters, digits and '_': write ${token.image.replace(/-/g, '_')}`;
  if (message.startsWith("expected '='")) return 'settings are written `key = value`, one or more per block';
  if (message.startsWith("expected ']'")) return 'list items are separated by commas: [a, b]';
  return undefined;
}
