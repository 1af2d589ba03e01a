// What both highlighters produce: the source cut into tokens, each with a colour class or none,
// whose texts joined give the source back unchanged. HTML is made from them in one place, so
// every token goes through escapeHtml (src/backends/escape.ts).
import { escapeHtml } from '../../backends/escape.ts';

/** CSS classes of the page's stylesheet: comment, preprocessor, string, number, keyword, type, builtin, constant, attribute. */
export type TokenClass = 'c' | 'p' | 's' | 'n' | 'k' | 't' | 'b' | 'm' | 'a';

export interface Token {
  readonly text: string;
  readonly cls?: TokenClass;
}

/** Appends a token, merging runs of uncoloured text into one. */
export function pushToken(tokens: Token[], text: string, cls: TokenClass | undefined): void {
  const last = tokens[tokens.length - 1];
  if (cls === undefined && last && last.cls === undefined) tokens[tokens.length - 1] = { text: last.text + text };
  else tokens.push(cls === undefined ? { text } : { text, cls });
}

/** Escaped text, coloured tokens in `<span class=…>`. */
export function tokensHtml(tokens: readonly Token[]): string {
  return tokens.map((t) => (t.cls ? `<span class="${t.cls}">${escapeHtml(t.text)}</span>` : escapeHtml(t.text))).join('');
}

/** The tokens of each line (split at '\n'; a token across lines is cut, each piece keeps its class). */
export function splitLines(tokens: readonly Token[]): Token[][] {
  const lines: Token[][] = [[]];
  for (const token of tokens) {
    token.text.split('\n').forEach((piece, i) => {
      if (i > 0) lines.push([]);
      if (piece !== '') pushToken(lines[lines.length - 1]!, piece, token.cls);
    });
  }
  return lines;
}
