// The one escaping rule per target for text qalc did not write itself (spec file paths,
// checkpoint, tokenizer and data paths, output folders). Everything the compiler emits —
// CUDA, WGSL, TypeScript, JSON, and the shell lines quoted in headers — takes such text only
// through these functions, and so does the HTML and SVG qalc writes (the inspect page, loss.svg).
//
// The danger is always the same: text that ends the construct it sits in. A line break ends a
// `//` comment (so does U+2028 in TypeScript), `*/` ends a block or doc comment, a trailing
// backslash continues a C++ line comment onto the next line, a quote ends a string literal, and
// `$(…)`, `;` or a backtick end a shell word.

/** Characters that must never reach emitted source raw: C0/C1 controls, format characters
 * (bidirectional overrides, zero-width joiners: "Trojan Source"), line and paragraph
 * separators, lone surrogates and private-use code points. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\u2028\u2029]/gu;

/**
 * Text for a comment in emitted CUDA, WGSL or TypeScript (line or doc comment): printable ASCII
 * only, anything else becomes '?', backslashes become '/' (a trailing one would continue a C++
 * `//` comment), and `*` `/` cannot meet. Lossy by design: comments are for reading.
 */
export function commentSafe(text: string): string {
  return text
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/\\/g, '/')
    .replace(/\*\//g, '*?');
}

/**
 * A single-quoted TypeScript/JavaScript string literal that evaluates to exactly `text`: quotes,
 * backslashes and every invisible or line-ending character escaped, so the literal stays on one
 * line and shows what it holds.
 */
export function tsString(text: string): string {
  const escaped = text
    .replace(/\\/g, '\\\\')
    .replace(/'/g, "\\'")
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `'${escaped}'`;
}

const SHELL_PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;
const SHELL_QUOTABLE = /^[\x20-\x7e]*$/;

/**
 * One word of a POSIX shell command line that the shell reads back as exactly `text`. It is also
 * safe inside any comment as it stands: printable ASCII, never `*` next to `/`, never ending in a
 * backslash. Plain words stay plain; printable ones are single-quoted; anything else (line
 * breaks, non-ASCII, quotes, `*` `/`) is written as a `$'…'` word (POSIX.1-2024, bash, zsh, dash)
 * with every byte of its UTF-8 spelt \xHH.
 */
export function shellWord(text: string): string {
  if (SHELL_PLAIN.test(text)) return text;
  if (SHELL_QUOTABLE.test(text) && !text.includes("'") && !text.includes('*/')) return `'${text}'`;
  let word = '';
  for (const byte of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(byte);
    word += byte >= 0x20 && byte < 0x7f && c !== '\\' && c !== "'" && c !== '*' ? c : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return `$'${word}'`;
}

/**
 * A relative path as a relative URL reference, for ES module specifiers and `new URL(…,
 * import.meta.url)`: both resolve their text as a URL, so `#`, `?` and `%` in a folder name would
 * otherwise cut the path short or be decoded. Every character outside the unreserved set and `/`
 * is percent-encoded (as UTF-8); the result is plain ASCII, safe in any string literal.
 */
export function relativeUrl(path: string): string {
  return path.split('/').map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)).join('/');
}

/**
 * JSON text for a file qalc writes (plan.json, manifest.json): JSON.stringify, with every
 * invisible character escaped as well, so the file shows what it holds and stays valid when a
 * tool pastes it into JavaScript or HTML (where U+2028 once ended a line). JSON.stringify has
 * already escaped the controls inside strings; the line breaks left are the indentation's.
 */
export function jsonText(value: unknown, indent = 2): string {
  return JSON.stringify(value, null, indent).replace(INVISIBLE, (c) => c === '\n' ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const HTML_ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Text for HTML or SVG (the inspect page, loss.svg): spec names, paths, comments and strings a
 * user wrote, and kernel sources (whose `<` and `&` are ordinary C and WGSL). Safe both as
 * element text and inside a double- or single-quoted attribute value. Control characters would
 * be parse errors or invisible; they are shown as their Unicode "control picture" (␀, ␛) so a
 * hostile path reads as what it is.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']|[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => {
    const entity = HTML_ENTITIES[c];
    if (entity) return entity;
    const code = c.charCodeAt(0);
    return `&#x${(code === 0x7f ? 0x2421 : 0x2400 + code).toString(16)};`;
  });
}
