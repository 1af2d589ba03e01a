// Spans from chevrotain tokens.
import type { IToken } from 'chevrotain';
import type { SourceSpan } from '../diagnostics/diagnostic.ts';

export function isRealToken(token: IToken | undefined): token is IToken {
  return token !== undefined && !token.isInsertedInRecovery && Number.isFinite(token.startOffset) && token.tokenType.name !== 'EOF';
}

export function tokenSpan(file: string, token: IToken): SourceSpan {
  return {
    file,
    line: token.startLine ?? 1,
    col: token.startColumn ?? 1,
    offset: token.startOffset,
    length: (token.endOffset ?? token.startOffset) - token.startOffset + 1,
  };
}

/** From the start of `first` to the end of `last`, which may be on another line. */
export function joinSpans(first: SourceSpan, last: SourceSpan): SourceSpan {
  return { ...first, length: last.offset + last.length - first.offset };
}

/** The position just after a token: where a missing token should have been. */
export function spanAfter(file: string, token: IToken): SourceSpan {
  const end = (token.endOffset ?? token.startOffset) + 1;
  return { file, line: token.endLine ?? token.startLine ?? 1, col: (token.endColumn ?? token.startColumn ?? 0) + 1, offset: end, length: 1 };
}
