import { describe, expect, it } from 'vitest';
import { gemmShape } from '../../../src/runtime/cuda/cuda.ts';
import { bf16Bits, bf16Value } from '../../../src/runtime/cuda/host-data.ts';
import { SimulatedDevice } from './simulated-device.ts';

describe('gemm on a device port', () => {
  it('computes alpha·op(a)·op(b) + beta·out row-major, with transposes, strides and offsets (the simulated cuBLAS)', () => {
    const device = new SimulatedDevice([]);
    const m = 3, n = 5, k = 7;
    const a = Float32Array.from({ length: k * m }, (_, i) => Math.sin(i + 1)); // stored transposed: k × m
    const bPadded = Float32Array.from({ length: n * 8 }, (_, i) => Math.cos(i)); // b stored n × k in rows of 8
    const aBuffer = device.alloc(a.byteLength), bBuffer = device.alloc(bPadded.byteLength + 16), outBuffer = device.alloc(m * n * 2);
    aBuffer.upload(a);
    const bBytes = new Uint8Array(bPadded.byteLength + 16);
    bBytes.set(new Uint8Array(bPadded.buffer), 16);
    bBuffer.upload(bBytes);
    const out0 = Uint16Array.from({ length: m * n }, (_, i) => bf16Bits(i / 4));
    outBuffer.upload(out0);
    device.gemm!({
      a: { buffer: aBuffer, type: 'f32', rows: k, columns: m }, transposeA: true,
      b: { buffer: bBuffer, type: 'f32', rows: n, columns: k, ld: 8, offset: 16 }, transposeB: true,
      out: { buffer: outBuffer, type: 'bf16', rows: m, columns: n }, alpha: 0.5, beta: 2,
    });
    const got = new Uint16Array(m * n);
    outBuffer.download(got);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) sum += a[p * m + i]! * bPadded[j * 8 + p]!;
        expect(bf16Value(got[i * n + j]!)).toBe(bf16Value(bf16Bits(0.5 * sum + 2 * bf16Value(out0[i * n + j]!))));
      }
    }
    expect(device.launched).toEqual(['gemm']);
  });

  it('refuses operands whose shapes do not chain or that run past their buffers', () => {
    const device = new SimulatedDevice([]);
    const buffer = device.alloc(64);
    const matrix = (rows: number, columns: number) => ({ buffer, type: 'f32' as const, rows, columns });
    expect(gemmShape({ a: matrix(2, 3), b: matrix(3, 4), out: matrix(2, 4) })).toEqual({ m: 2, n: 4, k: 3 });
    expect(() => gemmShape({ a: matrix(2, 3), b: matrix(2, 4), out: matrix(2, 4) })).toThrow(/op\(a\) is 2×3, op\(b\) 2×4/);
    expect(() => gemmShape({ a: matrix(4, 5), b: matrix(5, 4), out: matrix(4, 4) })).toThrow(/a \(4×5, ld 5, offset 0\) ends at byte 80 of a buffer of 64/);
    expect(() => gemmShape({ a: matrix(2, 3), b: { ...matrix(3, 2), type: 'bf16' }, out: matrix(2, 2) })).toThrow(/a is f32, b bf16/);
  });
});
