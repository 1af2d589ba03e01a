// The kernel manifest as both runtimes read it: every example's manifest.json parses, every
// kernel's entry points have exactly one launch for each T they accept and positive grids, a
// damaged manifest is an error naming the file and the kernel, and a runtime takes its kernels
// from the compile folder when it was compiled from the same plan (never lowering them again).
import { readdirSync, readFileSync, mkdtempSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dispatchFor, kernelPlanHash, launchesFor, ManifestError, parseManifest, type ManifestKernel } from '../../src/backends/manifest.ts';
import { frontEnd } from '../../src/compile.ts';
import { loadCompiledKernels } from '../../src/runtime/compiled-kernels.ts';
import { compileSpec } from '../support/inline-spec.ts';

const compiled = readdirSync('generated').map((spec) => join('generated', spec, 'manifest.json'));
const kernels: ManifestKernel[] = compiled.flatMap((path) => parseManifest(readFileSync(path, 'utf8'), path).kernels);

describe('manifest.json', () => {
  it('parses for every example, with a plan hash', () => {
    expect(compiled.length).toBeGreaterThanOrEqual(4);
    for (const path of compiled) expect(parseManifest(readFileSync(path, 'utf8'), path).planHash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('every kernel of every example: one launch per entry point for each T it accepts, positive grids', () => {
    expect(kernels.some((k) => k.target === 'cuda') && kernels.some((k) => k.target === 'wgsl')).toBe(true);
    for (const kernel of kernels) {
      const entryPoints = new Set(kernel.launches.map((l) => l.entryPoint));
      const largest = Math.max(...kernel.launches.map((l) => l.tokens.max ?? 600));
      for (const tokens of [1, 15, 16, 63, 64, 65, 512, largest].filter((t) => t <= largest)) {
        for (const entryPoint of entryPoints) {
          const matching = kernel.launches.filter((l) => l.entryPoint === entryPoint && tokens >= l.tokens.min && (l.tokens.max === null || tokens <= l.tokens.max));
          expect(matching, `${kernel.kernel} ${entryPoint} T=${tokens}`).toHaveLength(1);
        }
        const launches = launchesFor(kernel, tokens)!;
        expect(launches.map((l) => l.entryPoint)).toEqual([...entryPoints]);
        for (const launch of launches) for (const g of dispatchFor(launch, tokens)) expect(Number.isInteger(g) && g >= 1, `${launch.symbol} T=${tokens}`).toBe(true);
      }
    }
  });

  it('a decode kernel accepts no T past its range', () => {
    const decode = kernels.find((k) => k.role === 'decode')!;
    const max = Math.max(...decode.launches.map((l) => l.tokens.max!));
    expect(launchesFor(decode, max)).toBeDefined();
    expect(launchesFor(decode, max + 1)).toBeUndefined();
  });

  it('a damaged manifest is an error naming the file and the kernel', () => {
    const path = 'generated/stories260k/manifest.json';
    const manifest = JSON.parse(readFileSync(path, 'utf8'));
    manifest.kernels[3].launches[0].dispatch = ['ceil(T / 16)', 1, 1];
    expect(() => parseManifest(JSON.stringify(manifest), path)).toThrow(ManifestError);
    expect(() => parseManifest(JSON.stringify(manifest), path)).toThrow(new RegExp(`^${path}: kernel ${manifest.kernels[3].kernel}: launch .* is malformed`));
    expect(() => parseManifest('{"spec": "x"', path)).toThrow(/manifest\.json: not JSON/);
    expect(() => parseManifest('{"kernels": []}', path)).toThrow(/not a qalc kernel manifest/);
  });
});

describe('where a runtime gets the kernels', () => {
  it('from the compile folder when it was compiled from this plan', async () => {
    const { plan } = frontEnd('examples/stories260k.qal');
    const found = await loadCompiledKernels(plan!);
    expect(found.dir).toBe('generated/stories260k');
    expect(found.manifest.planHash).toBe(kernelPlanHash(plan!));
    const wgsl = found.manifest.kernels.find((k) => k.target === 'wgsl')!;
    expect(found.text(wgsl.file)).toBe(readFileSync(join('generated/stories260k', wgsl.file), 'utf8'));
  });

  it('the train and export blocks and the spec file do not change the plan hash; the quantization does', () => {
    const base = 'quant {\n  bits = 4\n  group = 32\n}\nadapter {\n  kind = qalora\n  rank = 4\n}\n';
    const hash = (body: string) => kernelPlanHash(compileSpec(body).plan!);
    expect(hash(`${base}train {\n  steps = 7\n}\n`)).toBe(hash(base));
    expect(hash(base.replace('bits = 4', 'bits = 3'))).not.toBe(hash(base));
  });

  it('compiled in memory, saying why, when the folder holds another plan', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'qalc-stale-'));
    cpSync('generated/stories260k', dir, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, planHash: '0000000000000000' }));
    const { plan } = frontEnd('examples/stories260k.qal');
    const found = await loadCompiledKernels(plan!, { dir });
    expect(found.dir).toBeNull();
    expect(found.why).toMatch(/was compiled from another plan of spec stories260k/);
    expect(found.manifest.kernels.map((k) => k.kernel)).toEqual(manifest.kernels.map((k: ManifestKernel) => k.kernel));
  });
});
