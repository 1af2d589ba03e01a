// `qalc inspect SPEC --html` as a person sees it: the page for examples/stories260k.qal, made by
// the real CLI, opened from disk in headless Debian Chromium (playwright-core). The DOM is
// checked: every spec line is there, a spec line's links reach its plan row and its kernels,
// every kernel in generated/stories260k is listed with its source unchanged, the page loads
// nothing, and a spec whose path is markup shows that path as text. A screenshot goes to
// test/artifacts/inspect-html/ (git-ignored).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_ARGS, chromiumEnv, chromiumMissing, hasChromium, skippedTitle, skipWithoutChromium } from './chromium.ts';

// tsconfig's lib has no DOM; these are the page globals the evaluate callbacks use.
declare const location: { hash: string };
declare const window: { scrollTo(x: number, y: number): void; pwned?: number };
type Details = { open: boolean };

const ARTIFACTS = 'test/artifacts/inspect-html';
const SPEC = 'examples/stories260k.qal';
const GENERATED = 'generated/stories260k';

function inspectHtml(spec: string, page: string): void {
  const r = spawnSync(process.execPath, ['src/cli/qalc.mjs', 'inspect', spec, '--html', page], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

const skip = skipWithoutChromium('the inspect --html page test');

describe.skipIf(skip)(`qalc inspect --html in headless Chromium${skippedTitle(skip)}`, () => {
  let dir: string;
  let context: BrowserContext;
  /** Every request a page made, and whatever it logged as an error. */
  const requests: string[] = [];
  const problems: string[] = [];

  beforeAll(async () => {
    if (!hasChromium) throw new Error(chromiumMissing);
    dir = mkdtempSync(join(tmpdir(), 'qalc-inspect-html-'));
    context = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, env: chromiumEnv(), timeout: 20_000, viewport: { width: 1400, height: 1000 } });
    context.on('request', (request) => requests.push(request.url()));
    // Chromium's own launch may take its 20 s under a loaded CI run: the hook must outlast it
    // (vitest's default hook timeout, 10 s, did not, and failed the suite once).
  }, 30_000);
  afterAll(async () => {
    await context?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function open(file: string): Promise<Page> {
    requests.length = 0;
    problems.length = 0;
    const page = await context.newPage();
    page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()); });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(pathToFileURL(file).href);
    return page;
  }

  it('links the spec to its plan rows and kernels, lists every kernel, and loads nothing', async () => {
    const file = join(dir, 'stories260k.html');
    inspectHtml(SPEC, file);
    const page = await open(file);

    // The spec, line for line.
    const specLines = readFileSync(SPEC, 'utf8').split('\n');
    const shown = await page.$$eval('.spec-file', (files) => [...files[0]!.querySelectorAll('.spec-line > code')].map((c) => c.textContent));
    expect(shown).toEqual(specLines);
    const quantLine = specLines.indexOf('quant {') + 1;
    const line = page.locator(`#spec-0-${quantLine}`);
    await expect.poll(() => line.getAttribute('class')).toContain('shaping');

    // From the quant block's line to a plan row it shaped…
    await line.locator('details.uses > summary').click();
    const rowLink = line.locator('a[href^="#plan-"]').first();
    const rowId = (await rowLink.getAttribute('href'))!.slice(1);
    await rowLink.click();
    expect(await page.evaluate(() => location.hash)).toBe(`#${rowId}`);
    const row = page.locator(`tr#${rowId}`);
    expect(await row.evaluate((el) => el.matches(':target'))).toBe(true);
    await expect.poll(() => row.isVisible()).toBe(true);
    expect(await row.locator('td').nth(1).textContent()).toBe('q');
    // …which marks the spec lines and kernels related to it, and links back to the line.
    expect(await line.getAttribute('class')).toContain('related');
    expect(await row.locator(`a[href="#spec-0-${quantLine}"]`).count()).toBe(1);

    // From the same line to a kernel it shaped.
    await page.goBack();
    await line.locator('details.uses').evaluate((d) => { (d as unknown as Details).open = true; });
    const kernelLink = line.locator('a[href^="#cuda-forward_"]').first();
    const kernelId = (await kernelLink.getAttribute('href'))!.slice(1);
    await kernelLink.click();
    const kernel = page.locator(`section.kernel[id="${kernelId}"]`);
    expect(await kernel.evaluate((el) => el.matches(':target'))).toBe(true);
    expect(await kernel.locator('dd a', { hasText: `stories260k.qal:${quantLine}` }).count()).toBe(1);
    const top = await kernel.evaluate((el) => el.getBoundingClientRect().top);
    expect(top).toBeGreaterThanOrEqual(0);
    expect(top).toBeLessThan(200);

    // Every kernel that `qalc compile` wrote, CUDA and WGSL, with its header and its source as
    // written (the page's lines are block elements, so textContent has no line breaks).
    const want = [
      ...readdirSync(join(GENERATED, 'cuda')).filter((f) => f.endsWith('.cu')).map((f) => `cuda-${f}`),
      ...readdirSync(join(GENERATED, 'wgsl')).filter((f) => f.endsWith('.wgsl')).map((f) => `wgsl-${f}`),
    ];
    const sections = await page.$$eval('section.kernel', (all) => all.map((s) => ({ id: s.id, text: [...s.querySelectorAll('pre.code')].map((p) => p.textContent).join('') })));
    expect(sections.map((s) => s.id).sort()).toEqual(want.sort());
    for (const s of sections) {
      const [target, ...name] = s.id.split('-');
      expect(s.text, s.id).toBe(readFileSync(join(GENERATED, target!, name.join('-')), 'utf8').replace(/\n/g, ''));
    }
    expect(await page.locator('.kernel-index tbody tr').count()).toBe(want.length);
    expect(await kernel.locator('pre.code.header .c').first().textContent()).toMatch(/^\/\/ forward_k\d+.*generated by qalc from spec stories260k/);
    expect(await kernel.locator('pre.code:not(.header) .k').count()).toBeGreaterThan(0);

    // The page is the whole of it: one request (the file itself), and nothing refused.
    expect(requests).toEqual([pathToFileURL(file).href]);
    expect(problems).toEqual([]);

    // What a person sees: the top of the page with the quant line's links open, the plan
    // table, and a kernel's highlighted source.
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.evaluate(() => { location.hash = ''; window.scrollTo(0, 0); });
    await page.screenshot({ path: join(ARTIFACTS, 'stories260k-spec.png') });
    await page.locator('#plan').evaluate((el) => el.scrollIntoView());
    await page.screenshot({ path: join(ARTIFACTS, 'stories260k-plan.png') });
    const body = kernel.locator('details.body');
    await body.evaluate((d) => { (d as unknown as Details).open = true; d.scrollIntoView(); });
    await page.screenshot({ path: join(ARTIFACTS, 'stories260k-kernel.png') });
    await page.close();
  }, 60_000);

  it('shows a spec whose path and comments are markup as text', async () => {
    const hostileDir = join(dir, 'dir <b>&amp;');
    mkdirSync(hostileDir);
    const spec = join(hostileDir, `q<img src=x onerror="window.pwned=1">'&\x1b.qal`);
    writeFileSync(spec, [
      'spec hostile',
      '# </code></div><script>window.pwned = 2</script> & "quotes" `${x}` */',
      'model { dim = 64  hidden_dim = 128  layers = 2  heads = 4  vocab = 512  context = 64 }',
      'quant {', '  bits = 4', '  group = 16', '}',
      'adapter {', '  kind = qalora', '  rank = 4', '}',
    ].join('\n') + '\n');
    const file = join(dir, 'hostile.html');
    inspectHtml(spec, file);
    const page = await open(file);
    expect(await page.evaluate(() => window.pwned)).toBeUndefined();
    expect(await page.locator('main img, main script, main b').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(1);
    // The path reads as written; ESC shows as its control picture.
    expect(await page.locator('main h3').first().textContent()).toBe(spec.replace('\x1b', '\u241b'));
    expect(await page.locator('#spec-0-2 > code').textContent()).toBe('# </code></div><script>window.pwned = 2</script> & "quotes" `${x}` */');
    expect(problems).toEqual([]);
    await page.close();
  }, 30_000);
});
