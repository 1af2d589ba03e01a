// Device buffers that are free to reuse, for the cuda ports' temporaries: a request gets the
// smallest free buffer that is large enough — the first of that size to come back, when several
// are — or none. Kept sorted by size (equal sizes in the order they came back) so that a request
// is a binary search, not a scan: a training step takes and returns some 2,000 temporaries.
import type { DeviceBuffer } from './cuda.ts';

export class BufferPool {
  private readonly free: DeviceBuffer[] = [];

  /** The smallest free buffer of at least `bytes`, now taken out of the pool; undefined if none is that large. */
  take(bytes: number): DeviceBuffer | undefined {
    const index = this.firstAtLeast(bytes);
    if (index === this.free.length) return undefined;
    return this.free.splice(index, 1)[0];
  }

  /** `buffer` is free again: after every free buffer of its size or smaller. */
  give(buffer: DeviceBuffer): void {
    this.free.splice(this.firstAtLeast(buffer.bytes + 1), 0, buffer);
  }

  /** Where the first free buffer of at least `bytes` is (the length if none). */
  private firstAtLeast(bytes: number): number {
    let low = 0;
    let high = this.free.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.free[middle]!.bytes < bytes) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
