// The spec's own lines for the inspect page, coloured by qal's real lexer (the one the parser
// uses), so the page shows the spec the way the compiler read it.
import { tokenMatcher, type IToken, type TokenType } from 'chevrotain';
import * as T from '../../../grammars/qal/tokens.ts';
import { pushToken, splitLines, type Token, type TokenClass } from './highlight-tokens.ts';

const KEYWORDS: readonly TokenType[] = [T.Spec, T.Include, T.Model, T.Quant, T.Adapter, T.Train, T.Export, T.Target, T.Override, T.Layers, T.Proj, T.All];

function classOf(token: IToken, next: IToken | undefined): TokenClass | undefined {
  if (tokenMatcher(token, T.Comment) || tokenMatcher(token, T.SlashComment)) return 'c';
  if (tokenMatcher(token, T.StringLiteral)) return 's';
  if (tokenMatcher(token, T.NumberLiteral) || tokenMatcher(token, T.IntegerLiteral)) return 'n';
  // A setting's name (`bits` in `bits = 4`), checked before keywords, since a keyword may name one.
  if (tokenMatcher(token, T.Name) && next && tokenMatcher(next, T.Equals)) return 'b';
  if (KEYWORDS.some((k) => tokenMatcher(token, k))) return 'k';
  return undefined;
}

/** Each line of `text` (split at '\n', as the diagnostics count lines) as tokens. */
export function specLineTokens(text: string): Token[][] {
  const lexed = T.qalLexer.tokenize(text);
  const lexemes = [...lexed.tokens, ...Object.values(lexed.groups).flat()].sort((a, b) => a.startOffset - b.startOffset);
  const tokens: Token[] = [];
  let covered = 0;
  lexemes.forEach((lexeme, i) => {
    // What no token covers (white space, and any character the lexer refused) stays plain text.
    pushToken(tokens, text.slice(covered, lexeme.startOffset), undefined);
    pushToken(tokens, lexeme.image, classOf(lexeme, lexemes[i + 1]));
    covered = lexeme.startOffset + lexeme.image.length;
  });
  pushToken(tokens, text.slice(covered), undefined);
  return splitLines(tokens.filter((t) => t.text !== ''));
}
