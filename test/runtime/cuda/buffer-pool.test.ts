import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../../src/runtime/cuda/buffer-pool.ts';
import { ParameterPacker, u32, f32, pointer } from '../../../src/runtime/cuda/cuda.ts';
import { SimulatedDevice } from './simulated-device.ts';

describe('the cuda ports\' pool of temporaries', () => {
  it('hands out the smallest free buffer that is large enough, each once', () => {
    const device = new SimulatedDevice([]);
    const [a512, b256, c1024, d256] = [512, 256, 1024, 256].map((bytes) => device.alloc(bytes));
    const pool = new BufferPool();
    for (const buffer of [a512!, b256!, c1024!, d256!]) pool.give(buffer);
    expect(pool.take(300)).toBe(a512);
    const small = [pool.take(1), pool.take(256)];
    expect(new Set(small)).toEqual(new Set([b256, d256]));
    expect(pool.take(2000)).toBeUndefined();
    expect(pool.take(1)).toBe(c1024); // the 256s are out: the next larger size
    expect(pool.take(1)).toBeUndefined();
    pool.give(b256!);
    expect(pool.take(200)).toBe(b256);
    pool.give(c1024!);
    expect(pool.take(300, 600)).toBeUndefined(); // at most `most` bytes
    expect(pool.take(300, 1024)).toBe(c1024);
  });
});

describe('launch parameters', () => {
  it('packs each at its natural alignment, reusing its memory, as cuLaunchKernel reads them', () => {
    const packer = new ParameterPacker();
    const offsets = packer.pack([u32(7), pointer(0x1234_5678_9abcn), f32(0.5), u32(3)]);
    expect([...offsets]).toEqual([0, 8, 16, 20]);
    const view = new DataView(packer.bytes.buffer);
    expect(view.getUint32(0, true)).toBe(7);
    expect(view.getBigUint64(8, true)).toBe(0x1234_5678_9abcn);
    expect(view.getFloat32(16, true)).toBe(0.5);
    expect(view.getUint32(20, true)).toBe(3);
    const again = packer.pack([f32(2), u32(9), pointer(5n), u32(1)]);
    expect([...again]).toEqual([0, 4, 8, 16]);
    expect(view.getBigUint64(8, true)).toBe(5n);
  });
});
