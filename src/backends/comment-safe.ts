// Text that did not come from the compiler (spec names, file paths) is only ever written into
// comments, and only through commentSafe: printable ASCII, no line breaks (which would end a
// `//` comment and let the rest run as code), no backslash (a trailing one continues a C++
// line comment; the CUDA backend shares this rule) and no `*/`.
export function commentSafe(text: string): string {
  return text
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/\\/g, '/')
    .replace(/\*\//g, '*?');
}
