// Where the newest values of each host array of a training step are, for the cuda backend that
// runs every op on the GPU (device-ops.ts). The model (src/train/qalora-model.ts) hands its ops
// host Float32Arrays; here they are handles:
// - an array an op wrote lives on the device from then on (resident) — in the encoding its
//   writer used: float32 rows for the model-op kernels, a linear kernel's bf16/fp16 rows (with
//   its binding's row stride) for y, u and v — until syncToHost copies it back and hands it to
//   the host again. Readers that want another encoding get a converted copy (the Converter: device-ops.ts's convert kernels). The
//   host must not touch a resident array in between (QaLoraModel touches its arrays only through
//   the ops, and syncs the logits, the loss and the gradients it hands out);
// - an op that produces an array for readers that round it anyway (RMSNorm's output, which the
//   linear kernels read in bf16) can write it in their layout at once: `wanted` says which layout
//   the readers of the array's previous values asked for (the model's op sequence is the same
//   every step), and writeRounded records that the op rounded early. A reader in another
//   encoding would then see rounded values where it used to see float32: counted in
//   earlyRoundings, which is 0 unless a step's readers change;
// - every other array is the host's and is uploaded each time an op reads it (token ids,
//   targets, and A and B until an optimizer on the device first updates them);
// - an array placed in packed storage (an optimizer on the device places each adapter's A, B and
//   their gradients: packed-parameters.ts) keeps one buffer, a view of that storage, for good: its
//   writes go there (float32 rows only), an upload of the host's values goes there, a sync leaves
//   it there; placedSpan() gives arrays placed back to back as one buffer; a storage with a
//   shadow (shadow()) also has a 16-bit copy, which a dense 16-bit read of a placed array gets a
//   view of — refreshed whole, by one conversion, when the storage changed since its last refresh;
// - an array zeroed by zeroLater (the model's zeroFill of a gradient before the ops that add
//   into it) is known to hold zeros with no launch yet: the first op that writes it may
//   overwrite it instead of adding (overwritable: an op's overwrite entry, a GEMM with beta = 0),
//   and only a reader or an op that adds into it fills the buffer first (a memset then). At the
//   7B shape that leaves 7 of a 2-block step's 49 fills (attention adds into dq, dk, dv; the
//   gradient norm's sum); `eagerZeros` fills at once and overwrites nothing (the path before,
//   for comparison: QALC_CUDA_EAGER_ZERO=1);
// - frozen weights (norm weights, the embedding table, the classifier, RoPE tables, codes) go up
//   once per host array and layout (WeakMap-keyed: they must not change after their first use);
//   a quantized weight made on the device (device-quantize.ts) is adopted where it was made.
// A resident buffer stays with its array (the model allocates its activations once per batch
// shape, so a step reuses the buffers of the step before); temporaries come from a pool and go
// back to it when the op that took them has been launched — launches and the synchronous copies
// run in order on one stream, so a later copy into a pooled buffer waits for the kernel that
// read it.
import type { Floats } from '../typescript/floats.ts';
import type { CudaDevicePort, DeviceBuffer } from './cuda.ts';
import { BufferPool } from './buffer-pool.ts';
import { bytesPerElement, decodeRows, encodeRows, type ActivationType } from './host-data.ts';

/** How a resident array's values are laid out in its device buffer. */
export interface Layout {
  readonly encoding: ActivationType;
  readonly rows: number;
  readonly width: number;
  /** Elements between row starts (≥ width: a binding may pad its rows). */
  readonly stride: number;
}

export interface Resident extends Layout {
  readonly buffer: DeviceBuffer;
  /** Written in a 16-bit encoding by an op that could have written float32, because its readers wanted that layout. */
  readonly rounded?: boolean;
}

/** Where an array placed in packed storage lives: bytes [byteOffset, byteOffset + its length) of `storage`, as `view`. */
interface Placement {
  readonly storage: DeviceBuffer;
  readonly byteOffset: number;
  readonly view: DeviceBuffer;
}

/** A 16-bit copy of a whole storage of placed arrays, [rows, columns] float32 → encoding. */
interface Shadow {
  readonly encoding: ActivationType;
  /** Allocated at the first refresh: a storage never read in 16 bits costs no memory. */
  buffer?: DeviceBuffer;
  readonly rows: number;
  readonly columns: number;
  /** The copy holds the storage's newest values (nothing wrote a placed array since the refresh). */
  fresh: boolean;
  /** The arrays placed in the storage. */
  readonly placed: Float32Array[];
}

/** The layouts an array's values were read in since it was written: one, or several (the host's sync counts as dense float32). */
type Readers = Layout | 'several';

/**
 * Device-side re-encoding, run by the convert kernels (device-ops.ts supplies them). Logical
 * element j of a layout sits at position(j) = ⌊j / width⌋·stride + j mod width of its buffer.
 */
export interface Converter {
  /** to[position_to(j)] = from[position_from(j)] for j < count, re-encoded. */
  convert(to: DeviceBuffer, toLayout: Layout, from: DeviceBuffer, fromLayout: Layout, count: number): void;
  /** to[j] += from[offset + position_from(j)] for j < count (= with `overwrite`); `to` is dense float32. */
  accumulate(to: DeviceBuffer, count: number, from: DeviceBuffer, fromLayout: Layout, offset: number, overwrite?: boolean): void;
}

export const dense = (length: number, encoding: ActivationType = 'f32'): Layout => ({ encoding, rows: 1, width: length, stride: length });

export const sameLayout = (a: Layout, b: Layout): boolean => a.encoding === b.encoding && a.stride === b.stride && a.width === b.width && a.rows === b.rows;
const elements = (layout: Layout) => layout.rows * layout.stride;

/** Float32 only, like the native CPU backend; a Float64Array is a programmer error here. */
export function float32(array: Floats, name: string): Float32Array {
  if (!(array instanceof Float32Array)) throw new TypeError(`the cuda backend computes in float32; ${name} is a Float64Array`);
  return array;
}

export class DeviceArrays {
  private readonly resident = new WeakMap<Float32Array, Resident>();
  private readonly frozenCopies = new WeakMap<object, Map<string, DeviceBuffer>>();
  private readonly pool = new BufferPool();
  private readonly taken: DeviceBuffer[] = [];
  private readonly readers = new WeakMap<Float32Array, Readers>();
  private readonly placed = new WeakMap<Float32Array, Placement>();
  /** placedSpan()'s views, by the first array of the span. */
  private readonly spans = new WeakMap<Float32Array, DeviceBuffer>();
  /** Arrays whose newest values are zeros on the device (markZero, zeroLater), until an op writes them. */
  private readonly zeros = new WeakSet<Float32Array>();
  /** Of those, the ones zeroLater left unfilled: their buffer holds older values until fill() or a write. */
  private readonly unfilled = new WeakSet<Float32Array>();
  /** How many times each array was handed out to be written (writes(): a copy of its values made since is stale when this moved). */
  private readonly writeCounts = new WeakMap<Float32Array, number>();
  /** The 16-bit copies of storages, by storage. */
  private readonly shadows = new WeakMap<DeviceBuffer, Shadow>();

  /** Conversions that refreshed a shadow (one a step while an optimizer on the device moves the adapters). */
  shadowRefreshes = 0;

  /** Bytes of device memory allocated so far; nothing is freed before the process ends, so this is also the peak. */
  allocatedBytes = 0;

  /** Reads, in float32 or another 16-bit layout, of values an op rounded for the readers it expected (see writeRounded). */
  earlyRoundings = 0;

  /** `eagerZeros`: zeroLater fills at once and overwritable() is always false (the path before known zeros). */
  constructor(private readonly driver: CudaDevicePort, private readonly converter: Converter, readonly eagerZeros = false) {}

  /** A device buffer that stays allocated (counted in allocatedBytes). */
  allocate(bytes: number): DeviceBuffer {
    this.allocatedBytes += bytes;
    return this.driver.alloc(bytes);
  }

  residentOf(host: Float32Array): Resident | undefined {
    return this.resident.get(host);
  }

  /**
   * From now on `host`'s device copy is bytes [byteOffset, byteOffset + host.byteLength) of
   * `storage`, never another buffer (a resident copy elsewhere, or in an earlier storage, is
   * synced to the host first).
   */
  place(host: Float32Array, storage: DeviceBuffer, byteOffset: number): void {
    this.syncToHost([host]);
    this.spans.delete(host);
    this.placed.set(host, { storage, byteOffset, view: storage.view(byteOffset, host.byteLength) });
    const shadow = this.shadows.get(storage);
    if (shadow !== undefined) {
      shadow.placed.push(host);
      shadow.fresh = false;
    }
  }

  /** One buffer over `hosts`' device copies when they are placed back to back, in order, in one storage; else undefined. */
  placedSpan(hosts: readonly Float32Array[]): DeviceBuffer | undefined {
    const first = this.placed.get(hosts[0]!);
    if (first === undefined) return undefined;
    let end = first.byteOffset;
    for (const host of hosts) {
      const placement = this.placed.get(host);
      if (placement === undefined || placement.storage !== first.storage || placement.byteOffset !== end) return undefined;
      end += host.byteLength;
    }
    const bytes = end - first.byteOffset;
    let span = this.spans.get(hosts[0]!);
    if (span === undefined || span.bytes !== bytes) this.spans.set(hosts[0]!, (span = first.storage.view(first.byteOffset, bytes)));
    return span;
  }

  /**
   * `storage` (float32, rows × columns dense; the arrays placed in it) gets a copy in `encoding`,
   * allocated when first read, refreshed when read after a change.
   */
  shadow(storage: DeviceBuffer, encoding: ActivationType, rows: number, columns: number): void {
    if (encoding === 'f32') throw new Error('shadow: a float32 shadow of float32 storage copies nothing');
    if (rows * columns * 4 > storage.bytes) throw new RangeError(`shadow: ${rows}×${columns} floats in a storage of ${storage.bytes} bytes`);
    this.shadows.set(storage, { encoding, rows, columns, fresh: false, placed: [] });
  }

  /**
   * `host`'s values in its storage's shadow, refreshed first if the storage changed since. Where
   * the host holds the newest values of arrays placed there (before an optimizer's first step,
   * after a sync) they all go up first and stay resident, as update() leaves an array: one
   * refresh for all of them, not one each.
   */
  private shadowed(host: Float32Array, placement: Placement, shadow: Shadow): DeviceBuffer {
    if (!this.resident.has(host)) {
      // update() uploads each into its place, leaves it resident and marks the shadow stale.
      for (const other of shadow.placed) if (!this.resident.has(other)) this.update(other);
    }
    const size = bytesPerElement(shadow.encoding);
    shadow.buffer ??= this.allocate(shadow.rows * shadow.columns * size);
    if (!shadow.fresh) {
      const { rows, columns, encoding } = shadow;
      this.converter.convert(shadow.buffer, { encoding, rows, width: columns, stride: columns }, placement.storage, { encoding: 'f32', rows, width: columns, stride: columns }, rows * columns);
      shadow.fresh = true;
      this.shadowRefreshes++;
    }
    return shadow.buffer.view((placement.byteOffset / 4) * size, host.length * size);
  }

  /** A placed array may change: its storage's shadow (if any) is stale. */
  private changing(placement: Placement | undefined): void {
    const shadow = placement === undefined ? undefined : this.shadows.get(placement.storage);
    if (shadow !== undefined) shadow.fresh = false;
  }

  /** `host`'s newest values are zeros on the device (an op just filled its resident buffer with them). */
  markZero(host: Float32Array): void {
    if (this.resident.has(host)) this.zeros.add(host);
  }

  /** Whether `host`'s newest values are zeros on the device (markZero, and nothing wrote it since). */
  isZero(host: Float32Array): boolean {
    return this.zeros.has(host);
  }

  /**
   * `host`'s newest values are zeros, on the device, from now on — without a launch unless
   * eagerZeros: the buffer is filled only when something reads it or adds into it first. The
   * readers of its previous values stay recorded: a zeroed gradient's first writer asks them
   * which layout to write (wanted), as an activation's writer does.
   */
  zeroLater(host: Float32Array): void {
    const readers = this.readers.get(host);
    const buffer = this.write(host, dense(host.length));
    if (readers !== undefined) this.readers.set(host, readers);
    this.zeros.add(host);
    if (this.eagerZeros) buffer.fill(0, host.byteLength);
    else this.unfilled.add(host);
  }

  /** Whether an op may overwrite `host` where it would add into it: it holds zeros (and zeros are not eager). */
  overwritable(host: Float32Array): boolean {
    return !this.eagerZeros && this.zeros.has(host);
  }

  /** The zeros zeroLater promised, written into `buffer` (the array's own) before anything reads it. */
  private fillZeros(host: Float32Array, buffer: DeviceBuffer): void {
    if (!this.unfilled.has(host)) return;
    this.unfilled.delete(host);
    buffer.fill(0, host.byteLength);
  }

  /** A pooled buffer of at least `bytes` for the op being launched; back to the pool at release(). */
  take(bytes: number): DeviceBuffer {
    const buffer = this.pool.take(bytes) ?? this.allocate(2 ** Math.ceil(Math.log2(Math.max(bytes, 256))));
    this.taken.push(buffer);
    return buffer;
  }

  /**
   * A buffer an array keeps as its resident copy: a free one from the pool, else a new one. Each
   * step re-encodes some arrays (a linear layer writes q in bf16, RoPE updates it in float32),
   * and the buffer an array leaves goes back to the pool; allocating anew each time grew the
   * pool by every such array every step (at the 7B shape, 64 MB a block a step). At most twice
   * the size: a resident array holding a far larger temporary would only make the next op
   * allocate another.
   */
  private acquire(bytes: number): DeviceBuffer {
    return this.pool.take(bytes, 2 * bytes) ?? this.allocate(bytes);
  }

  private noteRead(host: Float32Array, layout: Layout): void {
    const before = this.readers.get(host);
    this.readers.set(host, before === undefined || (before !== 'several' && sameLayout(before, layout)) ? layout : 'several');
    const found = this.resident.get(host);
    if (found?.rounded && found.encoding !== layout.encoding) this.earlyRoundings++;
  }

  /** The one layout that the readers of `host`'s values since its last write asked for (undefined: none read them, or several layouts). */
  wanted(host: Float32Array): Layout | undefined {
    const readers = this.readers.get(host);
    return readers === 'several' ? undefined : readers;
  }

  /** The op's temporaries go back to the pool (its launches are queued before any later copy). */
  release(): void {
    // pop(), not a loop and `length = 0`: setting an array's length takes V8's slow path.
    for (let buffer = this.taken.pop(); buffer !== undefined; buffer = this.taken.pop()) this.pool.give(buffer);
  }

  /**
   * `host`'s newest values in `layout` on the device: its resident buffer when that already is
   * the layout, else a temporary filled by conversion (resident elsewhere) or by upload.
   */
  read(host: Float32Array, layout: Layout): DeviceBuffer {
    if (host.length < layout.rows * layout.width) throw new RangeError(`an op reads ${layout.rows}×${layout.width} values from an array of ${host.length}`);
    this.noteRead(host, layout);
    const found = this.resident.get(host);
    if (found !== undefined && sameLayout(found, layout)) {
      this.fillZeros(host, found.buffer);
      return found.buffer;
    }
    const placement = this.placed.get(host);
    const shadow = placement === undefined ? undefined : this.shadows.get(placement.storage);
    if (shadow !== undefined && shadow.encoding === layout.encoding && layout.stride === layout.width && layout.rows * layout.width === host.length) {
      if (found !== undefined && this.unfilled.has(host)) {
        // The storage must hold the zeros before the shadow copies it.
        this.fillZeros(host, found.buffer);
        this.changing(placement);
      }
      return this.shadowed(host, placement!, shadow);
    }
    if (found === undefined && placement !== undefined && layout.encoding === 'f32' && layout.stride === layout.width) {
      placement.view.upload(host);
      this.changing(placement);
      return placement.view;
    }
    const buffer = this.take(elements(layout) * bytesPerElement(layout.encoding));
    if (found !== undefined && this.unfilled.has(host)) {
      // Zeros in any encoding are zero bytes: the temporary is filled, the array's own buffer waits.
      buffer.fill(0, elements(layout) * bytesPerElement(layout.encoding));
      return buffer;
    }
    if (found !== undefined) {
      const count = layout.rows * layout.width;
      if (found.rows * found.width < count) throw new RangeError(`an op reads ${layout.rows}×${layout.width} values of an array whose device copy holds ${found.rows}×${found.width}`);
      if (layout.stride > layout.width) buffer.fill(0, elements(layout) * bytesPerElement(layout.encoding));
      this.converter.convert(buffer, layout, found.buffer, found, count);
      return buffer;
    }
    buffer.upload(encodeRows(host, layout));
    return buffer;
  }

  /** A buffer in `layout` that an op overwrites: from then on `host`'s values are there. */
  write(host: Float32Array, layout: Layout): DeviceBuffer {
    return this.writeAs(host, layout, false);
  }

  /**
   * write() for an op that rounds its float32 results to `layout`'s 16-bit encoding because
   * that is what `wanted(host)` says its readers take — as a conversion would have rounded them.
   */
  writeRounded(host: Float32Array, layout: Layout): DeviceBuffer {
    if (layout.encoding === 'f32') throw new Error('writeRounded: float32 is no rounding');
    return this.writeAs(host, layout, true);
  }

  /**
   * A count that moves whenever `host`'s values may change on the device or go to the host (a
   * write, an update, a rewrite, a zeroing, a sync): a copy made of its resident buffer is still
   * its values while the count and the resident buffer are the same.
   */
  writes(host: Float32Array): number {
    return this.writeCounts.get(host) ?? 0;
  }

  private written(host: Float32Array): void {
    this.writeCounts.set(host, this.writes(host) + 1);
  }

  private writeAs(host: Float32Array, layout: Layout, rounded: boolean): DeviceBuffer {
    this.written(host);
    this.readers.delete(host);
    this.zeros.delete(host);
    this.unfilled.delete(host);
    const placement = this.placed.get(host);
    this.changing(placement);
    const found = this.resident.get(host);
    if (found !== undefined && sameLayout(found, layout)) {
      if (found.rounded !== rounded) this.resident.set(host, { ...found, rounded });
      return found.buffer;
    }
    if (placement !== undefined) {
      if (!sameLayout(layout, dense(host.length))) throw new Error(`an op writes an array kept in packed storage as ${layout.rows}×${layout.width} ${layout.encoding} (it holds ${host.length} float32)`);
      this.resident.set(host, { buffer: placement.view, ...layout, rounded });
      return placement.view;
    }
    const bytes = elements(layout) * bytesPerElement(layout.encoding);
    const buffer = found !== undefined && found.buffer.bytes >= bytes ? found.buffer : this.acquire(bytes);
    if (found !== undefined && buffer !== found.buffer) this.pool.give(found.buffer);
    if (layout.stride > layout.width) buffer.fill(0, bytes);
    this.resident.set(host, { buffer, ...layout, rounded });
    return buffer;
  }

  /**
   * For an op that reads `host` where it is resident (a buffer it took with read()) and writes it
   * anew in `layout`: a buffer that is never the one read. The one read goes back to the pool
   * once the op has been launched.
   */
  rewrite(host: Float32Array, layout: Layout): DeviceBuffer {
    this.written(host);
    const found = this.resident.get(host);
    if (found === undefined) throw new Error('rewrite: the array is not on the device');
    if (this.placed.has(host)) throw new Error('rewrite: the array is kept in packed storage (float32 only)');
    if (sameLayout(found, layout)) throw new Error('rewrite: the array is already in that layout (write in place)');
    // The op reads what read() gave it (zeros filled there); the buffer it leaves needs none.
    this.unfilled.delete(host);
    this.zeros.delete(host);
    const buffer = this.acquire(elements(layout) * bytesPerElement(layout.encoding));
    this.taken.push(found.buffer);
    this.readers.delete(host);
    this.resident.set(host, { buffer, ...layout });
    return buffer;
  }

  /**
   * `host`'s values as dense float32 on the device, resident, for an op that adds into them. Not
   * a reader for wanted(): an accumulating op takes dense float32 whatever the array's readers
   * want (attention's dq += between the zeros and RoPE's backward, which writes for the q linear).
   */
  update(host: Float32Array): DeviceBuffer {
    this.written(host);
    const layout = dense(host.length);
    const found = this.resident.get(host);
    if (found?.rounded && found.encoding !== layout.encoding) this.earlyRoundings++;
    this.zeros.delete(host);
    const placement = this.placed.get(host);
    this.changing(placement);
    if (found !== undefined && sameLayout(found, layout)) {
      this.fillZeros(host, found.buffer);
      return found.buffer;
    }
    if (placement !== undefined && found === undefined) {
      placement.view.upload(host);
      this.resident.set(host, { buffer: placement.view, ...layout });
      return placement.view;
    }
    const buffer = this.acquire(host.byteLength);
    if (found !== undefined) {
      this.converter.convert(buffer, layout, found.buffer, found, Math.min(host.length, found.rows * found.width));
      this.pool.give(found.buffer);
    } else {
      buffer.upload(host);
    }
    this.resident.set(host, { buffer, ...layout });
    return buffer;
  }

  /** host[i] += from[offset + …] (see Converter.accumulate), on the device; into known zeros, host[i] = from[offset + …] (no fill). */
  accumulate(host: Float32Array, from: DeviceBuffer, fromLayout: Layout, offset = 0): void {
    if (this.overwritable(host)) this.converter.accumulate(this.write(host, dense(host.length)), host.length, from, fromLayout, offset, true);
    else this.converter.accumulate(this.update(host), host.length, from, fromLayout, offset);
  }

  /** Zeroes `host` where its newest values are. */
  zero(host: Float32Array): void {
    this.written(host);
    this.changing(this.placed.get(host));
    this.unfilled.delete(host);
    const found = this.resident.get(host);
    if (found === undefined) host.fill(0);
    else found.buffer.fill(0, elements(found) * bytesPerElement(found.encoding));
  }

  /** A weight that never changes, uploaded once per owner and layout name. */
  frozen(owner: object, layout: string, build: () => ArrayBufferView): DeviceBuffer {
    let copies = this.frozenCopies.get(owner);
    if (copies === undefined) this.frozenCopies.set(owner, (copies = new Map()));
    let buffer = copies.get(layout);
    if (buffer === undefined) {
      const values = build();
      buffer = this.allocate(Math.max(values.byteLength, 4));
      buffer.upload(values);
      copies.set(layout, buffer);
    }
    return buffer;
  }

  /**
   * A frozen weight made on the device (the quantize and pack kernels' output, allocated with
   * allocate()): what frozen(owner, layout, …) gives from now on, nothing built or uploaded.
   */
  adoptFrozen(owner: object, layout: string, buffer: DeviceBuffer): void {
    let copies = this.frozenCopies.get(owner);
    if (copies === undefined) this.frozenCopies.set(owner, (copies = new Map()));
    if (copies.has(layout)) throw new Error(`a frozen weight is already on the device as ${layout}`);
    copies.set(layout, buffer);
  }

  /** Copies every resident array among `hosts` back and hands it to the host (waits for the device). */
  syncToHost(hosts: readonly Float32Array[]): void {
    const onDevice = [...new Set(hosts)].filter((host) => this.resident.has(host));
    if (onDevice.length === 0) return;
    this.driver.synchronize();
    for (const host of onDevice) {
      this.written(host);
      this.noteRead(host, dense(host.length));
      const found = this.resident.get(host)!;
      this.resident.delete(host);
      this.zeros.delete(host);
      if (this.unfilled.has(host)) {
        this.unfilled.delete(host);
        host.fill(0);
      } else if (found.encoding === 'f32' && found.stride === found.width) {
        found.buffer.download(new Float32Array(host.buffer, host.byteOffset, Math.min(host.length, found.rows * found.width)));
      } else {
        const bytes = new Uint8Array(elements(found) * bytesPerElement(found.encoding));
        found.buffer.download(bytes);
        decodeRows(found.encoding, bytes, found.rows, found.width, found.stride, (index, value) => { host[index] = value; });
      }
      if (!this.placed.has(host)) this.pool.give(found.buffer);
    }
  }
}
