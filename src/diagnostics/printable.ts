// Text from a user's files, made safe to print on a terminal: a spec that holds an escape
// sequence must not be able to recolour, retitle or clear the terminal of whoever checks it,
// nor hide code behind a bidirectional override ("Trojan Source", CVE-2021-42574).

/**
 * C0 controls and DEL, C1 controls (U+0080–U+009F: 0x9B is a one-byte CSI on some terminals),
 * bidirectional embeddings, overrides and isolates, and the Unicode line and paragraph
 * separators. Tabs and newlines are the caller's business (an excerpt shows one line).
 */
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

function escape(character: string): string {
  const code = character.codePointAt(0)!;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
}

/**
 * Every unprintable character as a visible escape: ESC becomes `\x1b`, U+202E `\u{202e}`.
 * `keepNewlines` is for messages of several lines; an excerpt or a name is one line.
 */
export function printable(text: string, { keepNewlines = false } = {}): string {
  return text.replace(UNPRINTABLE, (c) => (keepNewlines && c === '\n' ? c : escape(c)));
}
