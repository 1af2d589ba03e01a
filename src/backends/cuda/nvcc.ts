// Building emitted CUDA: one fatbin per (kernel, arch) with nvcc, the ptxas report (registers,
// shared memory, spills) stored beside the source, and a cache outside the repository keyed
// by a content hash of (source, flags, nvcc version), so a second build of unchanged kernels
// (CI, `qalc compile` again) costs no compiler time. Without nvcc on PATH the sources are
// still written and the result says why nothing was compiled.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { CUDA_ARCHES, fatbinArguments, type CudaArch } from './nvcc-flags.ts';

const run = promisify(execFile);

export interface Nvcc {
  readonly path: string;
  /** The last line of `nvcc --version`: `Build cuda_13.0.r13.0/compiler.36424714_0`. */
  readonly version: string;
}

/** One kernel function's line of the ptxas report. */
export interface PtxasFunction {
  readonly name: string;
  readonly arch: string;
  readonly registers: number;
  readonly sharedBytes: number;
  readonly stackBytes: number;
  readonly spillStoreBytes: number;
  readonly spillLoadBytes: number;
}

export interface FatbinBuild {
  readonly arch: CudaArch;
  readonly fatbin: Buffer;
  /** nvcc's stderr: the `ptxas info` lines and any warning. */
  readonly report: string;
  readonly functions: readonly PtxasFunction[];
  /** Lines of the report that are neither ptxas info nor their continuation. */
  readonly warnings: readonly string[];
  readonly cached: boolean;
  readonly seconds: number;
}

let nvccLookup: Promise<Nvcc | null> | undefined;

/** nvcc from PATH (or $QALC_NVCC), once per process. */
export function findNvcc(): Promise<Nvcc | null> {
  nvccLookup ??= (async () => {
    const path = process.env['QALC_NVCC'] ?? 'nvcc';
    try {
      const { stdout } = await run(path, ['--version']);
      const lines = stdout.trim().split('\n');
      return { path, version: lines[lines.length - 1]!.trim() };
    } catch {
      return null;
    }
  })();
  return nvccLookup;
}

/** `${XDG_CACHE_HOME:-~/.cache}/qalc/nvcc`, or $QALC_NVCC_CACHE. */
export function nvccCacheDir(): string {
  const override = process.env['QALC_NVCC_CACHE'];
  if (override) return override;
  const base = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  return join(base, 'qalc', 'nvcc');
}

/** Parses `ptxas info` lines: per function its registers, shared memory, stack and spills. */
export function parsePtxasReport(report: string): PtxasFunction[] {
  const functions: PtxasFunction[] = [];
  let current: { name: string; arch: string; stackBytes: number; spillStoreBytes: number; spillLoadBytes: number } | undefined;
  for (const line of report.split('\n')) {
    const compiling = /Compiling entry function '([^']+)' for '([^']+)'/.exec(line);
    if (compiling) {
      current = { name: compiling[1]!, arch: compiling[2]!, stackBytes: 0, spillStoreBytes: 0, spillLoadBytes: 0 };
      continue;
    }
    const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (frame && current) {
      current.stackBytes = Number(frame[1]);
      current.spillStoreBytes = Number(frame[2]);
      current.spillLoadBytes = Number(frame[3]);
      continue;
    }
    const used = /Used (\d+) registers(?:, used \d+ barriers)?(?:, (\d+) bytes smem)?/.exec(line);
    if (used && current) {
      functions.push({ ...current, registers: Number(used[1]), sharedBytes: Number(used[2] ?? 0) });
      current = undefined;
    }
  }
  return functions;
}

function warningsOf(report: string): string[] {
  return report.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('ptxas info') && !/^\s+\d+ bytes stack frame/.test(line));
}

/** The fatbin of one source for one arch, from the cache when (source, flags, nvcc) were built before. */
export async function buildFatbin(nvcc: Nvcc, fileName: string, source: string, arch: CudaArch, cacheDir = nvccCacheDir()): Promise<FatbinBuild> {
  const args = fatbinArguments(arch, fileName, 'kernel.fatbin');
  const key = createHash('sha256').update(JSON.stringify({ source, args, nvcc: nvcc.version })).digest('hex');
  const entry = join(cacheDir, key.slice(0, 2), key);
  const started = performance.now();
  const finish = (fatbin: Buffer, report: string, cached: boolean): FatbinBuild => ({
    arch, fatbin, report, functions: parsePtxasReport(report), warnings: warningsOf(report), cached, seconds: (performance.now() - started) / 1000,
  });
  if (existsSync(join(entry, 'kernel.fatbin'))) {
    return finish(readFileSync(join(entry, 'kernel.fatbin')), readFileSync(join(entry, 'ptxas.txt'), 'utf8'), true);
  }
  const work = mkdtempSync(join(tmpdir(), 'qalc-nvcc-'));
  try {
    // A model op's file name has its folder (ops/rmsnorm_….cu), as `qalc compile` writes it.
    mkdirSync(dirname(join(work, fileName)), { recursive: true });
    writeFileSync(join(work, fileName), source);
    let report: string;
    try {
      const { stdout, stderr } = await run(nvcc.path, args, { cwd: work, maxBuffer: 64 * 1024 * 1024 });
      report = `${stdout}${stderr}`;
    } catch (error) {
      const failed = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`nvcc failed on ${fileName} for ${arch}:\n${failed.stdout ?? ''}${failed.stderr ?? failed.message}`);
    }
    const fatbin = readFileSync(join(work, 'kernel.fatbin'));
    // Fill a fresh folder, then rename it into place: readers never see half an entry, and
    // two builds racing on one key both leave a complete one.
    mkdirSync(join(cacheDir, key.slice(0, 2)), { recursive: true });
    const staging = mkdtempSync(join(cacheDir, key.slice(0, 2), `${key}.tmp-`));
    writeFileSync(join(staging, 'ptxas.txt'), report);
    writeFileSync(join(staging, 'kernel.fatbin'), fatbin);
    try {
      renameSync(staging, entry);
    } catch {
      rmSync(staging, { recursive: true, force: true });
    }
    return finish(fatbin, report, false);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export interface KernelSource {
  readonly fileName: string;
  readonly source: string;
}

export interface BuildResult {
  /** null: nvcc is not on PATH; only sources were written. */
  readonly nvcc: Nvcc | null;
  readonly message: string;
  readonly builds: readonly { readonly fileName: string; readonly build: FatbinBuild }[];
}

/** Runs `tasks` with at most `limit` in flight, results in input order. */
async function inParallel<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * Writes every source into `outDir` and, with nvcc, beside it `NAME.ARCH.fatbin` and
 * `NAME.ARCH.ptxas.txt` for every arch.
 */
export interface BuildProgress {
  /** Fatbins finished so far, of `total`; `cached` of them came from the cache. */
  readonly done: number;
  readonly cached: number;
  readonly total: number;
  readonly jobs: number;
}

export interface BuildOptions {
  readonly arches?: readonly CudaArch[];
  readonly jobs?: number;
  readonly cacheDir?: string;
  /** Called once before the first fatbin (done 0) and after each one. */
  readonly onProgress?: (progress: BuildProgress) => void;
}

export async function buildKernels(kernels: readonly KernelSource[], outDir: string, options: BuildOptions = {}): Promise<BuildResult> {
  mkdirSync(outDir, { recursive: true });
  // A file name may have a folder (the model ops' `ops/NAME.cu`): its fatbins go beside it, and
  // nvcc sees the bare name, as the header's compile command does.
  for (const k of kernels) {
    mkdirSync(dirname(join(outDir, k.fileName)), { recursive: true });
    writeFileSync(join(outDir, k.fileName), k.source);
  }
  const nvcc = await findNvcc();
  if (!nvcc) return { nvcc: null, message: `nvcc is not on PATH: wrote ${kernels.length} CUDA sources to ${outDir}, compiled none`, builds: [] };
  const arches = options.arches ?? CUDA_ARCHES;
  const jobs = kernels.flatMap((k) => arches.map((arch) => ({ k, arch })));
  const parallel = options.jobs ?? availableParallelism();
  const progress = { done: 0, cached: 0, total: jobs.length, jobs: parallel };
  options.onProgress?.({ ...progress });
  const builds = await inParallel(jobs, parallel, async ({ k, arch }) => {
    const build = await buildFatbin(nvcc, basename(k.fileName), k.source, arch, options.cacheDir);
    progress.done++;
    if (build.cached) progress.cached++;
    options.onProgress?.({ ...progress });
    const stem = join(outDir, k.fileName.replace(/\.cu$/, ''));
    writeFileSync(`${stem}.${arch}.fatbin`, build.fatbin);
    writeFileSync(`${stem}.${arch}.ptxas.txt`, build.report);
    return { fileName: k.fileName, build };
  });
  const cached = builds.filter((b) => b.build.cached).length;
  return { nvcc, message: `compiled ${builds.length - cached} fatbins with ${nvcc.path} (${cached} from the cache in ${options.cacheDir ?? nvccCacheDir()})`, builds };
}
