// The inspect page without a browser: nothing a user wrote reaches it as markup, the
// highlighters give back every character they were given, and the page is the same bytes on
// every run. test/browser/inspect-html.browser.test.ts opens the page in Chromium.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emitKernels } from '../../src/backends/emit-kernels.ts';
import { escapeHtml } from '../../src/backends/escape.ts';
import { tokenizeKernel } from '../../src/cli/inspect-html/highlight-kernel.ts';
import { specLineTokens } from '../../src/cli/inspect-html/highlight-spec.ts';
import { renderInspectPage } from '../../src/cli/inspect-html/render-page.ts';
import { compileInline } from '../support/inline-spec.ts';

// No NUL: the front end refuses a spec holding one as a binary file before any page is made.
const HOSTILE = 'a<script>x</script>&amp;"\'`${1}`*/\n\u2028\u001b[31m<img src=x onerror=alert(1)>';
const ARCH = 'model { dim = 64  hidden_dim = 128  layers = 2  heads = 4  vocab = 512  context = 64 }';

/** The page for a spec held in memory under `path` (which may be any string). */
function pageFor(files: Record<string, string>, entry: string): string {
  const result = compileInline(files, entry);
  expect(result.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.span.file}:${d.span.line}: ${d.message}`)).toEqual([]);
  return renderInspectPage({ plan: result.plan!, sources: result.sources, kernels: emitKernels(result.plan!) });
}

/** Every tag in the page, with its attribute names. */
function tags(html: string): { name: string; attributes: string[] }[] {
  return [...html.matchAll(/<\/?([A-Za-z][A-Za-z0-9]*)((?:\s+[^\s=>]+(?:="[^"]*")?)*)\s*\/?>/g)].map((m) => ({
    name: m[1]!.toLowerCase(),
    attributes: [...m[2]!.matchAll(/([^\s=]+)(?:="[^"]*")?/g)].map((a) => a[1]!),
  }));
}

describe('inspect --html escaping', () => {
  it('escapes markup, quotes and control characters', () => {
    expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;');
    expect(escapeHtml('\u0000\u001b\u007f\t\n\u2028é')).toBe('&#x2400;&#x241b;&#x2421;\t\n\u2028é');
  });

  it('shows a hostile path, include and comment as text, never as markup', () => {
    const entry = `dir ${HOSTILE}/spec ${HOSTILE}.qal`;
    // A qal string holds no newline or quote, and a backslash only as an escape.
    const includePath = `common ${HOSTILE.replace(/[\n"\\]/g, ' ')}.qal`;
    const page = pageFor({
      [entry]: `spec hostile\n# ${HOSTILE.replace(/\n|\u2028/g, ' ')}\ninclude "${includePath}"\n${ARCH}\nquant {\n  bits = 4\n  group = 16\n}\n`,
      [join(dirname(entry), includePath)]: 'adapter {\n  kind = qalora\n  rank = 4\n}\n',
    }, entry);
    // Only the page's own elements and attributes: no <script>, <img> or on… handler got in.
    const allowed = new Set(['html', 'head', 'meta', 'title', 'style', 'body', 'header', 'h1', 'h2', 'h3', 'div', 'nav', 'a', 'button', 'main', 'p', 'code', 'span', 'details', 'summary', 'dl', 'dt', 'dd', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'pre', 'section', 'script']);
    const found = tags(page);
    expect(found.filter((t) => !allowed.has(t.name))).toEqual([]);
    expect(found.filter((t) => t.name === 'script')).toHaveLength(2); // <script> and </script>, the page's own
    expect(new Set(found.flatMap((t) => t.attributes))).toEqual(new Set(['lang', 'charset', 'http-equiv', 'content', 'name', 'class', 'href', 'id', 'type', 'title', 'data-uses', 'style']));
    // Every attribute value is quoted and holds no raw quote or angle bracket.
    expect(page.match(/="[^"]*[<>][^"]*"/g)).toBeNull();
    expect(page).not.toMatch(/[\u0000\u001b]/);
    // The names read as written: the path in the spec's heading and the header, escaped.
    expect(page).toContain(`<h3>${escapeHtml(entry)}</h3>`);
    expect(page).toContain(`<h3>${escapeHtml(join(dirname(entry), includePath))}</h3>`);
    // The included file's adapter block links to what it shaped, like the entry's lines.
    expect(page).toMatch(/<div class="spec-line shaping" id="spec-1-1" data-uses="plan-0 [^"]*cuda-forward_/);
    expect(page).toContain(`from <code>${escapeHtml(entry)}</code>`);
    expect(page).toContain(escapeHtml(`# ${HOSTILE.replace(/\n|\u2028/g, ' ')}`));
  });

  it('is the same page on every run', () => {
    const files = { 's.qal': `spec s\n${ARCH}\nquant {\n  bits = 4\n  group = 16\n}\n` };
    expect(pageFor(files, 's.qal')).toBe(pageFor(files, 's.qal'));
  });
});

describe('inspect --html highlighting', () => {
  it('gives back every character of every emitted kernel', () => {
    for (const language of ['cuda', 'wgsl'] as const) {
      const dir = join('generated/stories260k', language);
      for (const file of readdirSync(dir).filter((f) => f.endsWith(language === 'cuda' ? '.cu' : '.wgsl'))) {
        const source = readFileSync(join(dir, file), 'utf8');
        const tokens = tokenizeKernel(source, language);
        expect(tokens.map((t) => t.text).join(''), file).toBe(source);
        expect(tokens.some((t) => t.cls === 'k'), file).toBe(true);
      }
    }
  });

  it('colours what each token is', () => {
    const cuda = tokenizeKernel('#include <cstdint>\n__global__ void f(const uint32_t* q) { float x = 1.5f; /* c */ return; } // end', 'cuda');
    const cls = (tokens: typeof cuda, text: string) => tokens.find((t) => t.text === text)?.cls;
    expect([cls(cuda, '#include <cstdint>'), cls(cuda, '__global__'), cls(cuda, 'uint32_t'), cls(cuda, '1.5f'), cls(cuda, '/* c */'), cls(cuda, '// end')]).toEqual(['p', 'k', 't', 'n', 'c', 'c']);
    const wgsl = tokenizeKernel('@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) { let a = 0x1fu; }', 'wgsl');
    expect([cls(wgsl, '@compute'), cls(wgsl, 'fn'), cls(wgsl, 'vec3u'), cls(wgsl, 'global_invocation_id'), cls(wgsl, '0x1fu')]).toEqual(['a', 'k', 't', 'b', 'n']);
  });

  it('keeps the spec line for line, with comments, strings and numbers coloured', () => {
    const text = readFileSync('examples/stories260k.qal', 'utf8');
    const lines = specLineTokens(text);
    expect(lines.map((l) => l.map((t) => t.text).join(''))).toEqual(text.split('\n'));
    const quant = lines[text.split('\n').indexOf('quant {')]!;
    expect(quant.find((t) => t.text === 'quant')?.cls).toBe('k');
    expect(lines[0]![0]!.cls).toBe('c');
    expect(lines.flat().find((t) => t.text.startsWith('"../../shared'))?.cls).toBe('s');
    expect(lines.flat().find((t) => t.text === 'bits')?.cls).toBe('b');
  });
});
