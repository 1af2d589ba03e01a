// Device buffers that are free to reuse, for the cuda ports' temporaries: a request gets the
// smallest free buffer that is large enough, or none. Which of several free buffers of one size
// it gets does not matter (they are interchangeable: one stream orders every use, and the sizes
// left free, hence what is allocated later, are the same): the last one returned, off a stack
// per size. The sizes are few (a model's shapes, rounded up to powers of two) and kept sorted,
// empty stacks included, so that taking and returning — some 2,000 times a training step —
// neither allocates nor moves an array's elements once the sizes have all been seen.
import type { DeviceBuffer } from './cuda.ts';

export class BufferPool {
  /** Every size ever returned, ascending, and the free buffers of each. */
  private readonly sizes: number[] = [];
  private readonly free = new Map<number, DeviceBuffer[]>();

  /** The smallest free buffer of `bytes` to `most` bytes, now taken out of the pool; undefined if there is none. */
  take(bytes: number, most = Number.POSITIVE_INFINITY): DeviceBuffer | undefined {
    const { sizes } = this;
    for (let i = this.firstAtLeast(bytes); i < sizes.length && sizes[i]! <= most; i++) {
      const buffer = this.free.get(sizes[i]!)!.pop();
      if (buffer !== undefined) return buffer;
    }
    return undefined;
  }

  /** `buffer` is free again. */
  give(buffer: DeviceBuffer): void {
    let stack = this.free.get(buffer.bytes);
    if (stack === undefined) {
      this.free.set(buffer.bytes, (stack = []));
      this.sizes.splice(this.firstAtLeast(buffer.bytes), 0, buffer.bytes);
    }
    stack.push(buffer);
  }

  /** Where the first size of at least `bytes` is in `sizes` (its length if none). */
  private firstAtLeast(bytes: number): number {
    const { sizes } = this;
    let low = 0;
    let high = sizes.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (sizes[middle]! < bytes) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
