// The emitted quantize and pack kernels themselves, not a transcription: their .cu (as `qalc
// compile` writes it, the host launchers cut off) compiled by g++ against the CPU stand-in of
// test/backends/cuda/h200/ops/emulate/cuda_emulation.h and run thread by thread over their grid,
// for ragged shapes at 2, 3, 4 and 8 bits, symmetric and asymmetric, on weights with RTN's corners
// (exact ties, all-zero and all-positive groups): the codes and zeros are the host RTN's
// (src/quant/rtn.ts) exactly, the scales its float64 scales rounded once to float32, and the packed
// words packQweight's. This is what lets the device quantization (src/runtime/cuda/device-quantize.ts)
// promise the host's codes bit for bit; the H200 runs the same kernels in check_kernels.py.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CudaManifestKernel } from '../../../src/backends/manifest.ts';
import { packQweight } from '../../../src/quant/gptq-pack.ts';
import { quantizeRtnByRows } from '../../../src/quant/rtn.ts';
import { loadCompiledKernels } from '../../../src/runtime/compiled-kernels.ts';
import { rtnCornerWeights } from '../../support/rtn-corner-weights.ts';
import { caseName, syntheticPlan, type KernelCase } from '../../ir/kernel-cases.ts';

const EMULATE = resolve('test/backends/cuda/h200/ops/emulate');
const hasGpp = spawnSync('g++', ['--version']).status === 0;

const CASES: readonly KernelCase[] = [
  { inFeatures: 172, outFeatures: 64, bits: 4, group: 43 },
  { inFeatures: 64, outFeatures: 300, bits: 2, group: 16 },
  { inFeatures: 96, outFeatures: 40, bits: 3, group: 32 },
  { inFeatures: 128, outFeatures: 40, bits: 8, group: 64 },
  { inFeatures: 96, outFeatures: 24, bits: 3, group: 16, symmetric: true },
  { inFeatures: 96, outFeatures: 37, bits: 4, group: 32, symmetric: true },
  { inFeatures: 192, outFeatures: 24, bits: 8, group: 64, symmetric: true },
  { inFeatures: 96, outFeatures: 24, bits: 2, group: 32, symmetric: true },
];

const weightOf = (c: KernelCase, seed: number): Float32Array => rtnCornerWeights(c.inFeatures, c.outFeatures, c.group, seed);

/** The source up to its host launchers (<<< >>> is not C++), for g++. */
const deviceCode = (source: string) => source.slice(0, source.indexOf('// Host launchers:'));

/** One driver over every kernel: `driver SYMBOL IN OUT1 [OUT2]` runs SYMBOL's grid thread by thread. */
function driverSource(kernels: readonly CudaManifestKernel[]): string {
  const lines = ['#include <cstdio>', '#include <cstring>', '#include <vector>', '#include "cuda_emulation.h"'];
  const runs: string[] = [];
  const read = (type: string, name: string, count: number, path: string) =>
    `std::vector<${type}> ${name}(${count}); { FILE* f = std::fopen(${path}, "rb"); if (!f || std::fread(${name}.data(), sizeof(${type}), ${name}.size(), f) != ${name}.size()) return 2; std::fclose(f); }`;
  const write = (name: string, path: string) => `{ FILE* f = std::fopen(${path}, "wb"); std::fwrite(${name}.data(), sizeof(${name}[0]), ${name}.size(), f); std::fclose(f); }`;
  const grid = (x: number, y: number, threads: number, call: string) =>
    `for (uint32_t bx = 0; bx < ${Math.ceil(x / threads)}u; ++bx) for (uint32_t by = 0; by < ${y}u; ++by) for (uint32_t tx = 0; tx < ${threads}u; ++tx) { blockIdx = {bx, by, 0}; threadIdx = {tx, 0, 0}; blockDim = {${threads}u, 1, 1}; ${call}; }`;
  for (const k of kernels) {
    const c = k.constants as Record<string, number>;
    const K = c['PADDED_IN_FEATURES']!, N = c['OUT_FEATURES']!, threads = c['THREADS']!;
    if (k.role === 'quantize') {
      const symbol = k.launches[0]!.symbol, L = c['GROUPS']!;
      lines.push(`extern "C" void ${symbol}(const float*, uint32_t*, float*, unsigned, float);`);
      runs.push(`if (!std::strcmp(argv[1], "${symbol}")) { ${read('float', 'weight', N * K, 'argv[2]')} std::vector<uint32_t> codes(${K * N}); std::vector<float> sz(${2 * L * N}); ` +
        `${grid(N, L, threads, `${symbol}(weight.data(), codes.data(), sz.data(), 0u, 0.0f)`)} ${write('codes', 'argv[3]')} ${write('sz', 'argv[4]')} return 0; }`);
    } else {
      const symbol = k.launches.find((l) => l.entryPoint === 'packQweight')!.symbol, rows = c['WORD_ROWS']!;
      lines.push(`extern "C" void ${symbol}(uint32_t*, uint32_t*, unsigned, float);`);
      runs.push(`if (!std::strcmp(argv[1], "${symbol}")) { ${read('uint32_t', 'codes', K * N, 'argv[2]')} std::vector<uint32_t> qweight(${rows * N}); ` +
        `${grid(N, rows, threads, `${symbol}(codes.data(), qweight.data(), 0u, 0.0f)`)} ${write('qweight', 'argv[3]')} return 0; }`);
    }
  }
  return [...lines, 'int main(int argc, char** argv) {', '  if (argc < 4) return 2;', ...runs.map((r) => `  ${r}`), '  return 3;', '}', ''].join('\n');
}

describe.runIf(hasGpp)('the emitted quantize and pack kernels, compiled for the CPU stand-in', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qalc-quantize-emulated-'));
  let kernels: CudaManifestKernel[] = [];
  beforeAll(async () => {
    const compiled = await loadCompiledKernels(syntheticPlan(CASES), { targets: ['cuda'] });
    kernels = compiled.manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda' && (k.role === 'quantize' || k.role === 'pack'));
    // One translation unit (the stand-in's headers are slow to compile): each kernel's source in
    // a namespace of its own, so that their `using namespace` lines do not meet; the headers come
    // first, so each source's own #include lines find them included already.
    const headers = ['#include <cmath>', '#include <cstddef>', '#include <cstdint>', '#include "cuda_runtime.h"', '#include "cuda_fp16.h"', '#include "cuda_bf16.h"'];
    const wrapped = kernels.map((k, i) => `namespace emulated_${i} {\n${deviceCode(compiled.text(k.file))}\n}  // namespace emulated_${i}`);
    writeFileSync(join(dir, 'driver.cpp'), [...headers, ...wrapped, driverSource(kernels)].join('\n'));
    const built = spawnSync('g++', ['-std=c++20', '-O0', '-w', '-pthread', '-I', EMULATE, join(dir, 'driver.cpp'), '-o', join(dir, 'driver')], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(built.stderr.slice(-3000));
  }, 300_000);

  const run = (symbol: string, input: ArrayBufferView, outputs: number) => {
    writeFileSync(join(dir, 'in.bin'), new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
    const paths = Array.from({ length: outputs }, (_, i) => join(dir, `out${i}.bin`));
    const ran = spawnSync(join(dir, 'driver'), [symbol, join(dir, 'in.bin'), ...paths], { encoding: 'utf8' });
    if (ran.status !== 0) throw new Error(`driver ${symbol}: exit ${ran.status} ${ran.stderr}`);
    return paths.map((p) => readFileSync(p));
  };

  it.each(CASES.map((c, index) => [caseName(c), c, index] as const))('%s: the host RTN\'s codes and zeros exactly, its scales rounded once to float32, packQweight\'s words', (name, c, index) => {
    const kernelOf = (role: string) => kernels.find((k) => k.role === role && k.layers.includes(name))!;
    const w = weightOf(c, 70 + index);
    const K = c.inFeatures, N = c.outFeatures;
    const host = quantizeRtnByRows(K, N, { bits: c.bits, groupSize: c.group, symmetric: c.symmetric ?? false }, (o, into) => into.set(w.subarray(o * K, (o + 1) * K)));
    const [codesBytes, szBytes] = run(kernelOf('quantize').launches[0]!.symbol, w, 2);
    const codes = new Uint32Array(codesBytes!.buffer, codesBytes!.byteOffset, K * N);
    const sz = new Float32Array(szBytes!.buffer, szBytes!.byteOffset, host.scales.length * 2);
    expect(Array.from(codes)).toEqual(Array.from(host.q));
    expect(Array.from(sz.subarray(host.scales.length))).toEqual(Array.from(host.zeros));
    expect(Array.from(sz.subarray(0, host.scales.length))).toEqual(Array.from(host.scales, Math.fround));
    const pack = kernelOf('pack');
    const [words] = run(pack.launches.find((l) => l.entryPoint === 'packQweight')!.symbol, codes, 1);
    const expected = new Uint32Array(packQweight(host.q, K, N, c.bits).buffer);
    expect(Array.from(new Uint32Array(words!.buffer, words!.byteOffset, expected.length))).toEqual(Array.from(expected));
  });
});
