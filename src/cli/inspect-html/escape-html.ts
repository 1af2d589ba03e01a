// The one escaping rule for text that reaches the inspect page: spec names, paths, comments and
// strings a user wrote, and kernel sources (whose `<` and `&` are ordinary C and WGSL). The
// result is safe both as element text and inside a double- or single-quoted attribute value.
// Control characters (NUL, ESC, …) would be parse errors or invisible; they are shown as their
// Unicode "control picture" (␀, ␛) so a hostile path reads as what it is.

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']|[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => {
    const entity = ENTITIES[c];
    if (entity) return entity;
    const code = c.charCodeAt(0);
    return `&#x${(code === 0x7f ? 0x2421 : 0x2400 + code).toString(16)};`;
  });
}
