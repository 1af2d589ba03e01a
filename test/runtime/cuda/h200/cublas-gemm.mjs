// The cuBLAS binding on the GPU (native/cuda-driver.cc's gemm, dlopened libcublas): the raw addon
// (alloc, copyToDevice, gemm, copyFromDevice) on ragged shapes against float64 in JS, every
// transpose combination, strides and offsets, through the typed CudaDriver too, then the
// LLaMA-7B lm_head shapes timed; a table last, exit status 1 on a failed check.
// Run on the GPU machine from the repository root, with the addon built (build/Release) and
// src/runtime/cuda/cuda.ts bundled beside this file:
//   npx esbuild --bundle --platform=node --format=esm src/runtime/cuda/cuda.ts --outfile=test/runtime/cuda/h200/cuda.mjs
//   node test/runtime/cuda/h200/cublas-gemm.mjs
// Results: H200-TRAIN.md ("cuBLAS").
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above with qalc's package.json. */
function projectRoot() {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'qalc') return dir;
    if (dirname(dir) === dir) throw new Error('no qalc package.json above this script');
  }
}
// The file cuda.mjs's CudaDriver loads too, so both share one addon instance.
const addon = createRequire(import.meta.url)(join(projectRoot(), 'build', 'Release', 'qalc_cuda.node'));
const rows = [];
const failures = [];
console.log('probe', JSON.stringify(addon.probe()));
console.log('blasProbe', JSON.stringify(addon.blasProbe()));

// bf16 / f16 encodings (round to nearest even) and decodings.
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
const bf16Bits = (v) => { f32[0] = v; const x = u32[0]; return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff; };
const bf16Value = (b) => { u32[0] = b << 16; return f32[0]; };
const f16Bits = (v) => {
  // |v| ≤ 65504 (the test's values are in [-1, 1]); below 2^-14 subnormal
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0; v = Math.abs(v);
  if (v < 2 ** -14) return sign | Math.round(v / 2 ** -24);
  let e = Math.floor(Math.log2(v)); if (v < 2 ** e) e--; if (v >= 2 ** (e + 1)) e++;
  let m = Math.round((v / 2 ** e - 1) * 1024);
  if (m === 1024) { m = 0; e++; }
  return sign | ((e + 15) << 10) | m;
};
const f16Value = (b) => (b & 0x8000 ? -1 : 1) * (((b >> 10) & 31) === 0 ? (b & 1023) * 2 ** -24 : (1 + (b & 1023) / 1024) * 2 ** (((b >> 10) & 31) - 15));
const codec = {
  bf16: { size: 2, encode: bf16Bits, decode: bf16Value, Array: Uint16Array },
  f16: { size: 2, encode: f16Bits, decode: f16Value, Array: Uint16Array },
  f32: { size: 4, encode: (v) => v, decode: (v) => v, Array: Float32Array },
};

let seed = 12345;
const random = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 31 - 1; };

/** A row-major matrix on the device: rows × columns in rows of ld, `offset` elements in; values = what it holds, as numbers. */
function matrix(type, rowCount, columns, { ld = columns, offset = 0, fill = random } = {}) {
  const c = codec[type];
  const stored = new c.Array(offset + rowCount * ld);
  const values = new Float64Array(rowCount * columns);
  for (let i = 0; i < rowCount; i++) for (let j = 0; j < columns; j++) {
    const bits = c.encode(fill());
    stored[offset + i * ld + j] = bits;
    values[i * columns + j] = c.decode(bits);
  }
  const pointer = addon.alloc(Math.max(1, stored.byteLength));
  addon.copyToDevice(pointer, stored);
  return { type, rows: rowCount, columns, ld, offset, pointer, values, bytes: stored.byteLength, at: pointer + BigInt(offset * c.size) };
}
function download(x) {
  const c = codec[x.type];
  const stored = new c.Array(x.offset + x.rows * x.ld);
  addon.synchronize();
  addon.copyFromDevice(stored, x.pointer);
  const out = new Float64Array(x.rows * x.columns);
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.columns; j++) out[i * x.columns + j] = c.decode(stored[x.offset + i * x.ld + j]);
  return out;
}
/** float64 alpha·op(a)·op(b) + beta·out0, optionally only at sampled (i, j). */
function reference(a, b, out0, { transposeA = false, transposeB = false, alpha = 1, beta = 0 }, m, n, k, samples) {
  const A = (i, p) => (transposeA ? a.values[p * a.columns + i] : a.values[i * a.columns + p]);
  const B = (p, j) => (transposeB ? b.values[j * b.columns + p] : b.values[p * b.columns + j]);
  const one = (i, j) => { let s = 0; for (let p = 0; p < k; p++) s += A(i, p) * B(p, j); return alpha * s + (beta === 0 ? 0 : beta * out0[i * n + j]); };
  if (samples) return samples.map(([i, j]) => one(i, j));
  const r = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) r[i * n + j] = one(i, j);
  return r;
}
const worst = (got, want) => { let e = 0, s = 0; for (let i = 0; i < want.length; i++) { e = Math.max(e, Math.abs(got[i] - want[i])); s = Math.max(s, Math.abs(want[i])); } return e / s; };

function check(name, { m, n, k, ab = 'bf16', outType = 'f32', transposeA = false, transposeB = false, alpha = 1, beta = 0, pad = 0, offset = 0, tolerance, samples }) {
  const a = transposeA ? matrix(ab, k, m, { ld: m + pad, offset }) : matrix(ab, m, k, { ld: k + pad, offset });
  const b = transposeB ? matrix(ab, n, k, { ld: k + pad, offset }) : matrix(ab, k, n, { ld: n + pad, offset });
  const out = matrix(outType, m, n, { ld: n + pad, offset, fill: beta === 0 ? () => 7 : random });
  const out0 = out.values.slice();
  addon.gemm(transposeA, transposeB, m, n, k, alpha, a.at, a.ld, b.at, b.ld, beta, out.at, out.ld, ab, outType);
  const got = download(out);
  const at = samples ? Array.from({ length: samples }, () => [Math.floor((random() + 1) / 2 * m), Math.floor((random() + 1) / 2 * n)]) : undefined;
  const want = reference(a, b, out0, { transposeA, transposeB, alpha, beta }, m, n, k, at);
  const error = worst(at ? at.map(([i, j]) => got[i * n + j]) : got, want);
  const ok = error < tolerance;
  if (!ok) failures.push(name);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${m}×${n}×${k} ${ab}→${outType} tA=${transposeA} tB=${transposeB} alpha=${alpha} beta=${beta} pad=${pad} offset=${offset}: max error / max |ref| = ${error.toExponential(2)} (< ${tolerance})`);
  rows.push({ what: `check ${name}`, shape: `${m}×${n}×${k}`, types: `${ab}→${outType}`, result: `${error.toExponential(2)} ${ok ? 'ok' : 'FAIL'}` });
  for (const x of [a, b, out]) addon.free(x.pointer);
}

const t0 = performance.now();
// lm_head forward (x · Eᵀ) and backward (dx += dLogits · E) at a ragged row count.
check('lm_head forward', { m: 37, n: 1000, k: 4096, transposeB: true, tolerance: 1e-5 });
check('lm_head forward, bf16 out', { m: 37, n: 1000, k: 4096, transposeB: true, outType: 'bf16', tolerance: 8e-3 });
check('lm_head backward (+=)', { m: 37, n: 4096, k: 1000, beta: 1, tolerance: 1e-5 });
for (const transposeA of [false, true]) for (const transposeB of [false, true]) {
  check(`transposes ${+transposeA}${+transposeB}`, { m: 37, n: 53, k: 71, transposeA, transposeB, alpha: 0.5, beta: 2, pad: 3, offset: 5, tolerance: 1e-5 });
  check(`transposes ${+transposeA}${+transposeB} bf16 out`, { m: 37, n: 53, k: 71, transposeA, transposeB, outType: 'bf16', pad: 3, tolerance: 8e-3 });
}
check('f16 in', { m: 37, n: 53, k: 300, ab: 'f16', transposeB: true, tolerance: 1e-5 });
check('f16 in, f16 out', { m: 37, n: 53, k: 300, ab: 'f16', outType: 'f16', tolerance: 2e-3 });
check('f32 in', { m: 37, n: 53, k: 300, ab: 'f32', transposeA: true, tolerance: 1e-6 });
check('m = 1 (a decode row)', { m: 1, n: 777, k: 4096, transposeB: true, tolerance: 1e-5 });
check('k = 0: out = beta·out', { m: 5, n: 6, k: 0, beta: 0.5, tolerance: 1e-7 });
try {
  addon.gemm(false, false, 2, 2, 2, 1, 1n, 2, 1n, 2, 0, 1n, 2, 'f32', 'bf16');
  failures.push('f32→bf16 accepted');
} catch (e) { console.log(`f32 in, bf16 out refused: ${e.message}`); }

// Through the typed driver (src/runtime/cuda/cuda.ts): offsets in bytes, ld, the shape check.
{
  const { cudaDriver } = await import('./cuda.mjs');
  const driver = cudaDriver();
  console.log('CudaDriver.blas', JSON.stringify(driver.blas), 'gemm', typeof driver.gemm);
  const m = 19, n = 45, k = 130;
  const a = matrix('bf16', m, k, { ld: 136, offset: 8 }), b = matrix('bf16', n, k, { ld: 131, offset: 3 }), out = matrix('f32', m, n, { ld: 50, offset: 4 });
  const wrap = (x) => ({ buffer: { pointer: x.pointer, bytes: x.bytes }, type: x.type, rows: x.rows, columns: x.columns, ld: x.ld, offset: x.offset * codec[x.type].size });
  driver.gemm({ a: wrap(a), b: wrap(b), transposeB: true, out: wrap(out), alpha: 2 });
  const error = worst(download(out), reference(a, b, null, { transposeB: true, alpha: 2 }, m, n, k));
  const ok = error < 1e-5;
  if (!ok) failures.push('CudaDriver.gemm');
  console.log(`${ok ? 'ok  ' : 'FAIL'} CudaDriver.gemm with byte offsets and ld: ${error.toExponential(2)}`);
  rows.push({ what: 'check CudaDriver.gemm (offsets, ld)', shape: `${m}×${n}×${k}`, types: 'bf16→f32', result: `${error.toExponential(2)} ${ok ? 'ok' : 'FAIL'}` });
  let refused = '';
  try { driver.gemm({ a: wrap(a), b: wrap(b), out: wrap(out) }); } catch (e) { refused = e.message; }
  console.log(`shape mismatch refused: ${refused}`);
  if (!/op\(a\) is/.test(refused)) failures.push('shape check');
}
console.log(`checks took ${((performance.now() - t0) / 1000).toFixed(1)} s`);

// Timing: the LLaMA-7B lm_head at 2048 rows (batch × sequence), each way.
function time(name, { m, n, k, ab = 'bf16', outType = 'f32', transposeB = false, beta = 0, runs = 20, sampleCheck = 64 }) {
  const constant = (v) => () => v;
  const a = matrix(ab, m, k, { fill: random });
  const b = transposeB ? matrix(ab, n, k, { fill: random }) : matrix(ab, k, n, { fill: random });
  const out = matrix(outType, m, n, { fill: constant(0) });
  const call = () => addon.gemm(false, transposeB, m, n, k, 1, a.at, a.ld, b.at, b.ld, beta, out.at, out.ld, ab, outType);
  for (let i = 0; i < 3; i++) call();
  addon.synchronize();
  const start = performance.now();
  for (let i = 0; i < runs; i++) call();
  addon.synchronize();
  const ms = (performance.now() - start) / runs;
  const tflops = (2 * m * n * k) / (ms * 1e-3) / 1e12;
  // One more plain call from zero, then sampled entries against float64.
  addon.memset(out.pointer, 0, out.bytes);
  addon.gemm(false, transposeB, m, n, k, 1, a.at, a.ld, b.at, b.ld, 0, out.at, out.ld, ab, outType);
  const got = download(out);
  const at = Array.from({ length: sampleCheck }, () => [Math.floor((random() + 1) / 2 * m), Math.floor((random() + 1) / 2 * n)]);
  const error = worst(at.map(([i, j]) => got[i * n + j]), reference(a, b, null, { transposeB }, m, n, k, at));
  // f32 out: the tensor cores' f32 accumulation errs in proportion to k (H200, sampled entries:
  // 5.4e-6 of the largest at k = 4096, 3.4e-5 at k = 32000) — PyTorch's bf16 matmul is the same GEMM.
  const ok = error < (outType === 'f32' ? 2.5e-9 * Math.max(k, 4096) : 8e-3);
  if (!ok) failures.push(`${name} values`);
  console.log(`${name}: ${m}×${n}×${k} ${ab}→${outType}: ${ms.toFixed(3)} ms, ${tflops.toFixed(0)} TFLOP/s; sampled error ${error.toExponential(2)}`);
  rows.push({ what: `time ${name}`, shape: `${m}×${n}×${k}`, types: `${ab}→${outType}`, result: `${ms.toFixed(3)} ms, ${tflops.toFixed(0)} TFLOP/s (err ${error.toExponential(1)})` });
  for (const x of [a, b, out]) addon.free(x.pointer);
}
time('lm_head forward x·Eᵀ', { m: 2048, n: 32000, k: 4096, transposeB: true });
time('lm_head forward x·Eᵀ', { m: 2048, n: 32000, k: 4096, transposeB: true, outType: 'bf16' });
time('lm_head backward dLogits·E (+=)', { m: 2048, n: 4096, k: 32000, beta: 1 });
time('square', { m: 4096, n: 4096, k: 4096, transposeB: true, outType: 'bf16' });
time('lm_head forward, f32 in (cuBLAS SGEMM)', { m: 2048, n: 32000, k: 4096, ab: 'f32', transposeB: true, runs: 5 });

console.log('\n| what | m×n×k | types | result |\n|---|---|---|---|');
for (const r of rows) console.log(`| ${r.what} | ${r.shape} | ${r.types} | ${r.result} |`);
console.log(failures.length === 0 ? '\nALL CHECKS PASSED' : `\nFAILED: ${failures.join(', ')}`);
process.exitCode = failures.length === 0 ? 0 : 1;
