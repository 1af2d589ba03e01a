// The same bindings in a browser: test/browser/page-entry.ts (runWgslKernel and the generated
// descriptor of stories260K's down-projection forward kernel, K = 172, group 43) is bundled with
// esbuild, served on 127.0.0.1 with the WGSL file the descriptor names, and run on the page's
// navigator.gpu in headless Debian Chromium (its bundled SwiftShader) driven by playwright-core.
// Node compares what the page returns with the float64 oracle, as the Dawn test
// test/runtime/webgpu/generated-kernels.webgpu.test.ts does.
//
// Chromium is Debian's /usr/bin/chromium (test/browser/chromium.ts): without it the test fails in
// CI (CI set) and is skipped, loudly, elsewhere.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { expect, it } from 'vitest';
import { wgslForwardK172N64B4G43QaloraR4MeanF32 as forward } from '../../generated/stories260k/kernels.mts';
import { dequantize } from '../../src/quant/dequantize.ts';
import { packQweight } from '../../src/quant/gptq-pack.ts';
import { quantizeRtn } from '../../src/quant/rtn.ts';
import { qaloraForward } from '../../src/reference/qalora-layer.ts';
import { createRng, randomNormalMatrix } from '../../src/reference/random.ts';
import { CHROMIUM, CHROMIUM_ARGS, chromiumEnv, chromiumMissing, hasChromium, skippedTitle, skipWithoutChromium } from './chromium.ts';
import type { BrowserForwardInputs, BrowserForwardResult } from './page-entry.ts';
import { relativeL2Error } from '../support/relative-error.ts';
const WGSL_DIR = fileURLToPath(new URL('../../generated/stories260k/wgsl/', import.meta.url));
const PAGE_ENTRY = fileURLToPath(new URL('./page-entry.ts', import.meta.url));

const K = 172, N = 64, G = 43, L = 4, R = 4, T = 37, SCALE = 2;

const skip = skipWithoutChromium('the WebGPU-in-Chromium test');

it.skipIf(skip)(`runs the down projection's forward kernel through kernels.mts in headless Chromium${skippedTitle(skip)}`, async () => {
  if (!hasChromium) throw new Error(chromiumMissing);

  const rng = createRng(260);
  const weight = randomNormalMatrix(rng, K, N, 0.05);
  const quantized = quantizeRtn(weight, K, N, { bits: 4, groupSize: G });
  const a = randomNormalMatrix(rng, L, R, 0.5);
  const b = randomNormalMatrix(rng, R, N, 0.5);
  const x = Float32Array.from(randomNormalMatrix(rng, T, K, 1));
  const inputs: BrowserForwardInputs = {
    tokens: T,
    adapterScale: SCALE,
    input: Array.from(x),
    qweight: Array.from(new Uint32Array(packQweight(quantized.q, K, N, 4).buffer)),
    groupScalesAndZeros: Array.from(Float32Array.from([...quantized.scales, ...quantized.zeros])),
    adapterWeights: Array.from(Float32Array.from([...a, ...b])),
  };

  const bundle = await build({ entryPoints: [PAGE_ENTRY], bundle: true, format: 'esm', platform: 'browser', target: 'chrome120', write: false, logLevel: 'silent' });
  const script = bundle.outputFiles[0]!.text;
  const html = '<!doctype html><meta charset="utf-8"><title>qalc WebGPU</title><script type="module" src="/page.js"></script>';

  const served: string[] = [];
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    served.push(path);
    const send = (type: string, body: string) => { response.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }); response.end(body); };
    if (path === '/') send('text/html', html);
    else if (path === '/page.js') send('text/javascript', script);
    else if (path === '/inputs.json') send('application/json', JSON.stringify(inputs));
    else if (path.startsWith('/wgsl/') && basename(path) === path.slice('/wgsl/'.length) && existsSync(join(WGSL_DIR, basename(path)))) {
      send('text/plain', readFileSync(join(WGSL_DIR, basename(path)), 'utf8'));
    } else { response.writeHead(404); response.end(); }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const userDataDir = mkdtempSync(join(tmpdir(), 'qalc-chromium-'));
  const pageLog: string[] = [];
  let result: BrowserForwardResult;
  try {
    const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, env: chromiumEnv(), timeout: 20_000 });
    try {
      const page = context.pages()[0] ?? await context.newPage();
      page.on('console', (message) => pageLog.push(`console.${message.type()}: ${message.text()}`));
      page.on('pageerror', (error) => pageLog.push(`pageerror: ${error.message}`));
      await page.goto(`${origin}/`);
      await page.waitForFunction(() => 'qalcRunForward' in globalThis, undefined, { timeout: 10_000 });
      result = await page.evaluate(() => (globalThis as unknown as { qalcRunForward(): Promise<BrowserForwardResult> }).qalcRunForward());
    } finally {
      await context.close();
    }
  } catch (error) {
    throw new Error(`${(error as Error).message}\npage log:\n${pageLog.join('\n') || '(empty)'}\nserved: ${served.join(' ')}`, { cause: error });
  } finally {
    server.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }

  expect(served).toContain(`/${forward.file}`);
  const reference = dequantize({ ...quantized, scales: Float64Array.from(Float32Array.from(quantized.scales)), zeros: quantized.zeros });
  const want = qaloraForward({
    inFeatures: K, outFeatures: N, weight: reference,
    adapter: { groupSize: G, rank: R, pooling: 'mean', scaling: SCALE, a: Float64Array.from(Float32Array.from(a)), b: Float64Array.from(Float32Array.from(b)) },
  }, Float64Array.from(x), T);
  const errors = {
    output: relativeL2Error(result.output, want.y),
    pooledInput: relativeL2Error(result.pooledInput, want.u),
    adapterActivation: relativeL2Error(result.adapterActivation, want.v),
  };
  console.log(`Chromium: ${result.userAgent}\nadapter: ${JSON.stringify(result.adapterInfo)}\nfeatures: ${result.features.join(' ')}\nrelative errors: ${JSON.stringify(errors)}`);
  expect(errors.output).toBeLessThan(1e-5);
  expect(errors.pooledInput).toBeLessThan(1e-5);
  expect(errors.adapterActivation).toBeLessThan(1e-5);
}, 30_000);
