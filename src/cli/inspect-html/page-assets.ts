// The inspect page's stylesheet and script, inlined into the page (it makes no request: its
// Content-Security-Policy allows nothing to load). The script holds no data: what is related
// to what is read from the elements' data-uses attributes.

export const PAGE_STYLE = `
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --panel: #f6f8fa; --mark: #fff8c5; --target: #ffe58a; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: #fff; }
header, main { padding: 0 24px; }
header { border-bottom: 1px solid var(--line); padding-bottom: 8px; }
h1 { font-size: 20px; margin: 16px 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 6px 24px; z-index: 1; }
nav a { margin-right: 16px; }
a { color: #0550ae; text-decoration: none; } a:hover { text-decoration: underline; }
code, pre, .spec-line { font: 12.5px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.muted { color: var(--muted); }
.spec-file { border: 1px solid var(--line); border-radius: 6px; background: var(--panel); padding: 4px 0; }
.spec-line { display: grid; grid-template-columns: 4em minmax(0, 1fr) auto; gap: 0 12px; padding: 0 12px; scroll-margin-top: 40px; }
.spec-line > code { white-space: pre-wrap; overflow-wrap: anywhere; }
.spec-line .ln { color: var(--muted); text-align: right; }
.spec-line.shaping { background: #eef6ff; }
.uses { font: 12px system-ui, sans-serif; }
.uses summary { cursor: pointer; color: #0550ae; }
.spec-line > .uses { max-width: 60vw; }
.uses dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 2px 0 8px; }
.uses dt { color: var(--muted); }
.uses dd { margin: 0; display: flex; flex-wrap: wrap; gap: 0 12px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; vertical-align: top; text-align: left; white-space: nowrap; }
td.from { white-space: normal; }
th { background: var(--panel); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr, section.kernel, details.body { scroll-margin-top: 40px; }
pre.totals { background: var(--panel); padding: 8px 12px; border-radius: 6px; }
section.kernel { border: 1px solid var(--line); border-radius: 6px; padding: 4px 14px 10px; margin: 14px 0; }
section.kernel dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; }
section.kernel dt { color: var(--muted); }
section.kernel dd { margin: 0; }
.tag { font: 11px system-ui, sans-serif; border-radius: 10px; padding: 1px 7px; margin-right: 6px; background: #ddf4ff; }
.tag.wgsl { background: #fbefff; }
pre.code { background: var(--panel); border-radius: 6px; padding: 6px 0; margin: 4px 0; overflow-x: auto; counter-reset: line; }
pre.code .cl { display: block; padding: 0 12px 0 0; min-height: 1.5em; }
pre.code .cl::before { counter-increment: line; content: counter(line); display: inline-block; width: 4em; padding-right: 12px; text-align: right; color: var(--muted); user-select: none; }
details.body > summary { cursor: pointer; color: #0550ae; }
:target, .related { background: var(--mark) !important; }
:target { outline: 2px solid var(--target); }
.c { color: #6e7781; } .p { color: #8250df; } .s { color: #0a3069; } .n { color: #0550ae; }
.k { color: #cf222e; } .t { color: #953800; } .b { color: #8250df; } .m { color: #116329; } .a { color: #8250df; }
`;

export const PAGE_SCRIPT = `
(() => {
  const mark = () => {
    for (const el of [...document.querySelectorAll('.related')]) el.classList.remove('related');
    const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (!target) return;
    for (let d = target.closest('details'); d; d = d.parentElement.closest('details')) d.open = true;
    for (const id of (target.dataset.uses || '').split(' ')) document.getElementById(id)?.classList.add('related');
  };
  addEventListener('hashchange', mark);
  mark();
  const toggle = document.getElementById('toggle-sources');
  toggle.addEventListener('click', () => {
    const bodies = [...document.querySelectorAll('details.body')];
    const open = bodies.some((d) => !d.open);
    for (const d of bodies) d.open = open;
    toggle.textContent = open ? 'collapse all kernel sources' : 'expand all kernel sources';
  });
})();
`;
