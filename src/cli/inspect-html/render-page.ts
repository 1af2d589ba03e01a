// `qalc inspect SPEC --html`: one self-contained page for a person reading what the compiler
// made of a spec. The spec's lines, each linked to the plan rows and kernels it shaped (the
// plan's layers and the kernels record `file:line` sources); the per-layer size table that
// `qalc inspect` prints; and every emitted kernel, CUDA and WGSL, with its header and its
// highlighted source. Deterministic: the same plan gives the same bytes.
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { EmittedKernels } from '../../backends/emit-kernels.ts';
import type { Plan } from '../../plan/plan.ts';
import { planTable, type PlanTable, type PlanTableRow } from '../plan-table.ts';
import { escapeHtml as h } from '../../backends/escape.ts';
import { tokenizeKernel, type KernelLanguage } from './highlight-kernel.ts';
import { specLineTokens } from './highlight-spec.ts';
import { splitLines, tokensHtml, type Token } from './highlight-tokens.ts';
import { PAGE_SCRIPT, PAGE_STYLE } from './page-assets.ts';

export interface InspectPageInput {
  readonly plan: Plan;
  /** Every spec file read, entry first, path → text (FrontEndResult.sources). */
  readonly sources: ReadonlyMap<string, string>;
  readonly kernels: EmittedKernels;
  /** One plan row per layer instead of grouping identical ones, as `qalc inspect --all`. */
  readonly all?: boolean;
}

interface PageKernel {
  readonly id: string;
  readonly language: KernelLanguage;
  readonly name: string;
  readonly role: string;
  readonly file: string;
  readonly layers: readonly string[];
  readonly sources: readonly string[];
  readonly source: string;
}

/** Links between the page's elements, by element id, both ways. */
class Relations {
  private readonly uses = new Map<string, Set<string>>();
  link(a: string, b: string): void {
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const set = this.uses.get(from) ?? new Set<string>();
      set.add(to);
      this.uses.set(from, set);
    }
  }
  of(id: string): string[] {
    return [...(this.uses.get(id) ?? [])];
  }
}

// Only the page's own script may run: were anything a user wrote ever to reach the page as
// markup, its scripts and event handlers would still be refused.
const SCRIPT_HASH = `sha256-${createHash('sha256').update(PAGE_SCRIPT).digest('base64')}`;

const normalise = (path: string) => path.replace(/\\/g, '/');

const LANGUAGE_LABEL: Readonly<Record<KernelLanguage, string>> = { cuda: 'CUDA', wgsl: 'WGSL' };

/** What every section needs: the kernels, the plan table, and how elements link up. */
interface Page {
  readonly input: InspectPageInput;
  readonly files: readonly string[];
  readonly kernels: readonly PageKernel[];
  readonly kernelById: ReadonlyMap<string, PageKernel>;
  readonly table: PlanTable;
  readonly rowOfLayer: ReadonlyMap<string, number>;
  readonly relations: Relations;
  /** `file:line` (the plan's form) → the spec line's element id, when the file is on the page. */
  readonly lineId: (source: string) => string | undefined;
}

const rowId = (row: number) => `plan-${row}`;

function pageOf(input: InspectPageInput): Page {
  const files = [...input.sources.keys()];
  const fileIndex = new Map(files.map((f, i) => [normalise(f), i]));
  const lineId = (source: string): string | undefined => {
    const colon = source.lastIndexOf(':');
    const index = fileIndex.get(source.slice(0, colon));
    return index === undefined ? undefined : `spec-${index}-${source.slice(colon + 1)}`;
  };
  const kernels: PageKernel[] = [
    ...input.kernels.cuda.map((k) => ({ language: 'cuda' as const, k })),
    ...input.kernels.wgsl.map((k) => ({ language: 'wgsl' as const, k })),
  ].map(({ language, k }) => ({
    id: `${language}-${k.fileName}`, language, name: k.kernel.name, role: k.kernel.role,
    file: `${language}/${k.fileName}`, layers: k.kernel.layers, sources: k.kernel.sources, source: k.source,
  }));
  const table = planTable(input.plan, input.all === true);
  const rowOfLayer = new Map(table.rows.flatMap((r, i) => r.layers.map((l) => [l.name, i] as const)));

  const relations = new Relations();
  table.rows.forEach((row, i) => {
    for (const id of rowSources(row).map(lineId)) if (id) relations.link(id, rowId(i));
  });
  for (const k of kernels) {
    for (const id of k.sources.map(lineId)) if (id) relations.link(id, k.id);
    for (const row of new Set(k.layers.map((l) => rowOfLayer.get(l)))) if (row !== undefined) relations.link(k.id, rowId(row));
  }
  return { input, files, kernels, kernelById: new Map(kernels.map((k) => [k.id, k])), table, rowOfLayer, relations, lineId };
}

function rowSources(row: PlanTableRow): string[] {
  return [...new Set(row.layers.flatMap((l) => l.sources))];
}

const usesOf = (page: Page, id: string) => h(page.relations.of(id).join(' '));

function sourceLink(page: Page, source: string): string {
  const id = page.lineId(source);
  const colon = source.lastIndexOf(':');
  const label = `${basename(source.slice(0, colon))}:${source.slice(colon + 1)}`;
  return id ? `<a href="#${h(id)}" title="${h(source)}">${h(label)}</a>` : h(source);
}

/** The spec, one row per line; a line that shaped the plan lists what it shaped. */
function specSection(page: Page): string {
  return page.files.map((file, index) => {
    const lines = specLineTokens(page.input.sources.get(file)!).map((tokens, i) => {
      const id = `spec-${index}-${i + 1}`;
      const related = page.relations.of(id);
      const rows = related.filter((r) => r.startsWith('plan-'));
      const shaped = related.flatMap((r) => page.kernelById.get(r) ?? []);
      const links = related.length === 0 ? '<span></span>' : `<details class="uses"><summary>${count(rows.length, 'plan row')} · ${count(shaped.length, 'kernel')}</summary>${useList([
        ['plan rows', rows.map((r) => `<a href="#${r}">${page.table.rows[Number(r.slice('plan-'.length))]!.cells.slice(0, 2).map(h).join(' ')}</a>`)],
        ...(['cuda', 'wgsl'] as const).map((language) => [`${LANGUAGE_LABEL[language]} kernels`, kernelLinks(shaped.filter((k) => k.language === language))] as const),
      ])}</details>`;
      return `<div class="spec-line${related.length ? ' shaping' : ''}" id="${id}" data-uses="${usesOf(page, id)}"><a class="ln" href="#${id}">${i + 1}</a><code>${tokensHtml(tokens)}</code>${links}</div>`;
    });
    return `<h3>${h(file)}</h3>\n<div class="spec-file">\n${lines.join('\n')}\n</div>`;
  }).join('\n');
}

/** The plan table, as `qalc inspect` prints it, with each row's spec lines and kernels. */
function planSection(page: Page): string {
  const { table } = page;
  return [
    `<p>${h(table.title)}</p>`,
    '<table class="plan"><thead><tr>',
    ...table.header.map((c) => `<th>${h(c)}</th>`),
    '<th>from</th><th>kernels</th></tr></thead><tbody>',
    ...table.rows.map((row, i) => {
      const id = rowId(i);
      const rowKernels = page.relations.of(id).flatMap((r) => page.kernelById.get(r) ?? []);
      const cells = row.cells.map((c, j) => `<td${j >= table.numericFrom ? ' class="num"' : ''}${j === 0 ? ` title="${h(row.layers.map((l) => l.name).join(', '))}"` : ''}>${h(c)}</td>`);
      const from = rowSources(row).map((s) => sourceLink(page, s)).join(', ');
      const rowKernelLinks = rowKernels.length === 0 ? '-' : `<details class="uses"><summary>${count(rowKernels.length, 'kernel')}</summary>${useList([['', kernelLinks(rowKernels)]])}</details>`;
      return `<tr id="${id}" data-uses="${usesOf(page, id)}">${cells.join('')}<td class="from">${from || '-'}</td><td>${rowKernelLinks}</td></tr>`;
    }),
    '</tbody></table>',
    `<pre class="totals">${table.totals.map(h).join('\n')}</pre>`,
  ].join('\n');
}

/** Every kernel: an index, then each one's header (open) and the rest of its source (folded). */
function kernelsSection(page: Page): string {
  const tag = (k: PageKernel) => `<span class="tag ${k.language}">${LANGUAGE_LABEL[k.language]}</span>`;
  const from = (k: PageKernel) => k.sources.map((s) => sourceLink(page, s)).join(', ') || '-';
  const index = [
    '<table class="kernel-index"><thead><tr><th>target</th><th>kernel</th><th>role</th><th>layers</th><th>from</th></tr></thead><tbody>',
    ...page.kernels.map((k) => `<tr><td>${tag(k)}</td><td><a href="#${h(k.id)}"><code>${h(k.name)}</code></a></td><td>${h(k.role)}</td><td class="num">${k.layers.length}</td><td class="from">${from(k)}</td></tr>`),
    '</tbody></table>',
  ];
  const sections = page.kernels.map((k) => {
    const lines = splitLines(tokenizeKernel(k.source, k.language));
    if (lines.length > 1 && lines[lines.length - 1]!.length === 0) lines.pop();
    const headerLength = headerLines(k.source);
    const code = (part: readonly Token[][]) => part.map((l) => `<span class="cl">${tokensHtml(l)}</span>`).join('');
    const layerRows = [...new Set(k.layers.map((l) => page.rowOfLayer.get(l)))].filter((r) => r !== undefined);
    return [
      `<section class="kernel" id="${h(k.id)}" data-uses="${usesOf(page, k.id)}">`,
      `<h3>${tag(k)}<code>${h(k.name)}</code></h3>`,
      `<dl><dt>file</dt><dd><code>${h(k.file)}</code></dd><dt>role</dt><dd>${h(k.role)}</dd>`,
      `<dt>from</dt><dd>${from(k)}</dd>`,
      `<dt>layers</dt><dd>${count(k.layers.length, 'layer')}: ${h(k.layers.join(', '))} (plan ${layerRows.map((r) => `<a href="#${rowId(r)}">row ${r + 1}</a>`).join(', ')})</dd></dl>`,
      `<pre class="code header">${code(lines.slice(0, headerLength))}</pre>`,
      `<details class="body"><summary>source, lines ${headerLength + 1}–${lines.length}</summary>`,
      `<pre class="code" style="counter-reset: line ${headerLength}">${code(lines.slice(headerLength))}</pre></details>`,
      '</section>',
    ].join('\n');
  });
  return [...index, ...sections].join('\n');
}

export function renderInspectPage(input: InspectPageInput): string {
  const page = pageOf(input);
  const { plan } = input;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src '${SCRIPT_HASH}'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="qalc inspect --html">
<title>qalc inspect: spec ${h(plan.spec)}</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<header>
<h1>spec <code>${h(plan.spec)}</code></h1>
<div class="muted">from <code>${h(plan.specFile)}</code> · ${count(plan.layers.length, 'linear layer')} · ${count(input.kernels.cuda.length, 'CUDA kernel')}, ${count(input.kernels.wgsl.length, 'WGSL kernel')} · made by <code>qalc inspect SPEC --html</code></div>
</header>
<nav><a href="#spec">spec</a><a href="#plan">plan</a><a href="#kernels">kernels</a><button id="toggle-sources" type="button">expand all kernel sources</button></nav>
<main>
<h2 id="spec">Spec</h2>
<p class="muted">Highlighted lines shaped the plan: open a line's note for the plan rows and kernels it produced.</p>
${specSection(page)}
<h2 id="plan">Plan: every linear layer and its size</h2>
${planSection(page)}
<h2 id="kernels">Kernels</h2>
${kernelsSection(page)}
</main>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}

function kernelLinks(kernels: readonly PageKernel[]): string[] {
  return kernels.map((k) => `<a href="#${h(k.id)}" title="${h(k.file)}">${h(k.name)}</a>`);
}

/** Labelled groups of links; empty groups are left out. */
function useList(groups: readonly (readonly [string, readonly string[]])[]): string {
  const shown = groups.filter(([, links]) => links.length > 0);
  return `<dl>${shown.map(([label, links]) => `<dt>${h(label)}</dt><dd>${links.join('')}</dd>`).join('')}</dl>`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** The emitted header: the leading `//` lines and the blank line that ends them. */
function headerLines(source: string): number {
  const lines = source.split('\n');
  let n = 0;
  while (n < lines.length && lines[n]!.startsWith('//')) n++;
  if (n < lines.length && lines[n]!.trim() === '') n++;
  return n;
}
