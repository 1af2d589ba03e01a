// DeviceArrays' buffer policy (the values are the simulated device's business, device-ops.test.ts):
// what a training step re-encodes every step must not make it allocate every step.
import { describe, expect, it } from 'vitest';
import type { CudaDevicePort, DeviceBuffer } from '../../../src/runtime/cuda/cuda.ts';
import { dense, DeviceArrays, type Converter } from '../../../src/runtime/cuda/device-arrays.ts';

/** What the fake device was asked: uploads by pointer, conversions in order, fills' bytes. */
interface FakeLog {
  readonly uploads: bigint[];
  readonly conversions: { readonly to: bigint; readonly rows: number; readonly width: number; readonly encoding: string }[];
  readonly fills?: number[];
}

function arraysOnFakeDevice(log: FakeLog = { uploads: [], conversions: [] }, eagerZeros = false): DeviceArrays {
  let next = 0x1000n;
  const driver: CudaDevicePort = {
    loadModule: () => ({ function: (symbol) => ({ symbol, handle: 0 }) }),
    alloc(bytes): DeviceBuffer {
      const pointer = next;
      next += BigInt(bytes);
      const buffer = (at: bigint, size: number): DeviceBuffer => ({
        pointer: at, bytes: size, upload: () => { log.uploads.push(at); }, download: () => {}, fill: (_byte, count) => { log.fills?.push(count ?? size); }, copyFrom: () => {}, view: (offset, viewBytes) => buffer(at + BigInt(offset), viewBytes), free: () => {},
      });
      return buffer(pointer, bytes);
    },
    launch: () => {},
    synchronize: () => {},
  };
  const converter: Converter = {
    convert: (to, toLayout) => { log.conversions.push({ to: to.pointer, rows: toLayout.rows, width: toLayout.width, encoding: toLayout.encoding }); },
    accumulate: () => {},
  };
  return new DeviceArrays(driver, converter, eagerZeros);
}

describe('DeviceArrays', () => {
  it('reuses the buffers an array leaves when a step re-encodes it (bf16 from a linear layer, float32 after RoPE)', () => {
    const arrays = arraysOnFakeDevice();
    const q = new Float32Array(1024);
    const bf16 = { encoding: 'bf16' as const, rows: 8, width: 128, stride: 128 };
    const cycle = () => {
      arrays.write(q, bf16);
      arrays.update(q);
      arrays.release();
    };
    // The second step finds the float32 buffer big enough for the bf16 values and allocates one
    // more float32 buffer; from then on the two trade places.
    cycle();
    cycle();
    const settled = arrays.allocatedBytes;
    expect(settled).toBe(2048 + 2 * 4096);
    for (let step = 0; step < 5; step++) cycle();
    expect(arrays.allocatedBytes).toBe(settled);
  });

  it('does not keep a pooled temporary more than twice an array\'s size as its resident copy', () => {
    const arrays = arraysOnFakeDevice();
    arrays.take(1 << 20); // a large temporary of some op, back in the pool after it
    arrays.release();
    const before = arrays.allocatedBytes;
    const small = new Float32Array(1000);
    arrays.write(small, dense(small.length));
    expect(arrays.allocatedBytes - before).toBe(4000);
    // The large one is still free for the next op's temporary.
    arrays.take(1 << 20);
    expect(arrays.allocatedBytes - before).toBe(4000);
  });

  it('keeps an array placed in packed storage there: writes, uploads and syncs use its view, spans bind arrays placed back to back', () => {
    const arrays = arraysOnFakeDevice();
    const storage = arrays.allocate(4096);
    const a = new Float32Array(12), b = new Float32Array(20), apart = new Float32Array(4);
    arrays.place(a, storage, 0);
    arrays.place(b, storage, 48);
    arrays.place(apart, storage, 256);
    const at = (offset: number) => storage.pointer + BigInt(offset);
    const allocated = arrays.allocatedBytes;
    expect(arrays.read(a, dense(12)).pointer).toBe(at(0)); // uploaded into its place, not into a temporary
    expect(arrays.update(b).pointer).toBe(at(48));
    expect(arrays.write(a, dense(12)).pointer).toBe(at(0));
    arrays.syncToHost([a, b]);
    expect(arrays.write(a, dense(12)).pointer).toBe(at(0)); // the sync left the place its own
    expect(arrays.allocatedBytes).toBe(allocated);
    expect(arrays.placedSpan([a, b])).toMatchObject({ pointer: at(0), bytes: 128 });
    expect(arrays.placedSpan([b, a])).toBeUndefined();
    expect(arrays.placedSpan([b, apart])).toBeUndefined();
    expect(arrays.placedSpan([a, new Float32Array(20)])).toBeUndefined();
    expect(() => arrays.write(b, { encoding: 'bf16', rows: 1, width: 20, stride: 20 })).toThrow(/packed storage/);
    expect(() => arrays.rewrite(a, { encoding: 'bf16', rows: 1, width: 12, stride: 12 })).toThrow(/packed storage/);
  });

  it('knows an array holds zeros from markZero until an op writes or adds into it, or the host takes it back', () => {
    const arrays = arraysOnFakeDevice();
    const grad = new Float32Array(16);
    arrays.markZero(grad); // not on the device: the host's zeros are no device zeros
    expect(arrays.isZero(grad)).toBe(false);
    arrays.write(grad, dense(16));
    arrays.markZero(grad);
    expect(arrays.isZero(grad)).toBe(true);
    arrays.read(grad, dense(16));
    expect(arrays.isZero(grad)).toBe(true);
    arrays.update(grad);
    expect(arrays.isZero(grad)).toBe(false);
    arrays.markZero(grad);
    arrays.write(grad, dense(16));
    expect(arrays.isZero(grad)).toBe(false);
    arrays.markZero(grad);
    arrays.syncToHost([grad]);
    expect(arrays.isZero(grad)).toBe(false);
  });

  it('leaves zeroLater\'s zeros to the first writer: no fill for an overwrite, one before a read or an add, none for the host', () => {
    const fills: number[] = [];
    const arrays = arraysOnFakeDevice({ uploads: [], conversions: [], fills });
    const grad = new Float32Array(16);
    arrays.zeroLater(grad);
    expect([arrays.isZero(grad), arrays.overwritable(grad), fills]).toEqual([true, true, []]);
    arrays.write(grad, dense(16)); // an op that overwrites it
    expect([arrays.isZero(grad), arrays.overwritable(grad), fills]).toEqual([false, false, []]);
    arrays.zeroLater(grad);
    arrays.read(grad, { encoding: 'bf16', rows: 2, width: 8, stride: 8 }); // a 16-bit copy of zeros: a zeroed temporary
    expect(fills).toEqual([32]);
    arrays.update(grad); // an op that adds into it: its own buffer filled first, once
    arrays.update(grad);
    expect([arrays.isZero(grad), fills]).toEqual([false, [32, 64]]);
    grad.fill(7);
    arrays.zeroLater(grad);
    arrays.syncToHost([grad]); // the host gets zeros without a fill or a download
    expect([Array.from(grad).every((x) => x === 0), fills]).toEqual([true, [32, 64]]);
  });

  it('keeps the readers of the values before zeroLater for the first writer to ask', () => {
    const arrays = arraysOnFakeDevice();
    const grad = new Float32Array(16), bf16 = { encoding: 'bf16' as const, rows: 2, width: 8, stride: 8 };
    arrays.write(grad, dense(16));
    arrays.read(grad, bf16);
    arrays.zeroLater(grad);
    arrays.update(grad); // an accumulating op is no reader
    expect(arrays.wanted(grad)).toEqual(bf16);
  });

  it('eagerZeros: zeroLater fills at once and nothing may overwrite', () => {
    const fills: number[] = [];
    const arrays = arraysOnFakeDevice({ uploads: [], conversions: [], fills }, true);
    const grad = new Float32Array(16);
    arrays.zeroLater(grad);
    expect([arrays.isZero(grad), arrays.overwritable(grad), fills]).toEqual([true, false, [64]]);
    arrays.update(grad);
    expect(fills).toEqual([64]);
  });

  it('reads placed arrays in 16 bits from one shadow of their storage, converted whole once after any change', () => {
    const log: FakeLog = { uploads: [], conversions: [] };
    const arrays = arraysOnFakeDevice(log);
    const storage = arrays.allocate(32 * 4);
    arrays.shadow(storage, 'bf16', 2, 16);
    const a = new Float32Array(12), b = new Float32Array(20);
    arrays.place(a, storage, 0);
    arrays.place(b, storage, 48);
    const bf16 = (n: number) => dense(n, 'bf16');
    const allocated = arrays.allocatedBytes;
    // The first 16-bit read: both arrays' host values go up into the storage, and one conversion of it all.
    const aShadow = arrays.read(a, bf16(12));
    expect(log.uploads).toEqual([storage.pointer, storage.pointer + 48n]);
    expect(log.conversions).toEqual([{ to: aShadow.pointer, rows: 2, width: 16, encoding: 'bf16' }]);
    expect(arrays.allocatedBytes - allocated).toBe(32 * 2); // the shadow, allocated at its first read
    expect(aShadow.bytes).toBe(24);
    const bShadow = arrays.read(b, bf16(20));
    expect(bShadow).toMatchObject({ pointer: aShadow.pointer + 24n, bytes: 40 }); // b's 12th float on
    expect(log.conversions).toHaveLength(1);
    expect(log.uploads).toHaveLength(2); // both resident now
    // Reads in float32 change nothing; any write or add does.
    arrays.read(a, dense(12));
    arrays.read(b, bf16(20));
    expect(log.conversions).toHaveLength(1);
    arrays.update(a); // an optimizer about to move it
    arrays.read(b, bf16(20));
    expect(log.conversions).toHaveLength(2);
    arrays.write(b, dense(20));
    arrays.read(a, bf16(12));
    arrays.read(a, bf16(12));
    expect(log.conversions).toHaveLength(3);
    arrays.zero(a);
    arrays.read(b, bf16(20));
    expect(log.conversions).toHaveLength(4);
    // A sync hands a to the host, which may change it: b's part is still the newest, and the next
    // 16-bit read of a takes a's values again.
    arrays.syncToHost([a]);
    arrays.read(b, bf16(20));
    expect(log.uploads).toHaveLength(2);
    expect(log.conversions).toHaveLength(4);
    expect(arrays.read(a, bf16(12)).pointer).toBe(aShadow.pointer);
    expect(log.uploads.slice(2)).toEqual([storage.pointer]);
    expect(log.conversions).toHaveLength(5);
    expect(arrays.shadowRefreshes).toBe(5);
    expect(arrays.allocatedBytes - allocated).toBe(32 * 2);
    // A read of part of an array, or strided, is no view of the shadow: converted on its own.
    const part = arrays.read(b, { encoding: 'bf16', rows: 2, width: 8, stride: 8 });
    expect(part.pointer).not.toBe(bShadow.pointer);
    expect(log.conversions).toHaveLength(6);
    expect(arrays.shadowRefreshes).toBe(5);
  });
});
