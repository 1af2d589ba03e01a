// DeviceArrays' buffer policy (the values are the simulated device's business, device-ops.test.ts):
// what a training step re-encodes every step must not make it allocate every step.
import { describe, expect, it } from 'vitest';
import type { CudaDevicePort, DeviceBuffer } from '../../../src/runtime/cuda/cuda.ts';
import { dense, DeviceArrays, type Converter } from '../../../src/runtime/cuda/device-arrays.ts';

function arraysOnFakeDevice(): DeviceArrays {
  let next = 0x1000n;
  const driver: CudaDevicePort = {
    loadModule: () => ({ function: (symbol) => ({ symbol, handle: 0 }) }),
    alloc(bytes): DeviceBuffer {
      const pointer = next;
      next += BigInt(bytes);
      return { pointer, bytes, upload: () => {}, download: () => {}, fill: () => {}, copyFrom: () => {}, free: () => {} };
    },
    launch: () => {},
    synchronize: () => {},
  };
  const converter: Converter = { convert: () => {}, accumulate: () => {} };
  return new DeviceArrays(driver, converter);
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
});
