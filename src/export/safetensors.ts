// safetensors (Hugging Face's tensor file format), read and written here because it is small
// and exact: an 8-byte little-endian header length, a JSON header naming every tensor's dtype,
// shape and byte range, then the bytes. Free-form string metadata rides in "__metadata__".
// Readers check every range against the file, so a truncated file names the tensor it cut.
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { systemErrorReason } from '../system-error.ts';
import { basename, dirname, join } from 'node:path';

/** A Uint16Array holds IEEE half-precision bit patterns: it is written as F16 (GPTQ's scales). */
export type TensorData = Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array;
export type SafetensorsDtype = 'F32' | 'F64' | 'I32' | 'U8' | 'F16';

export interface NamedTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export interface SafetensorsFile {
  readonly tensors: ReadonlyMap<string, NamedTensor>;
  readonly metadata: Readonly<Record<string, string>>;
}

export class SafetensorsError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

const DTYPES: Record<SafetensorsDtype, { bytes: number; make: (buffer: ArrayBuffer, offset: number, length: number) => TensorData }> = {
  F32: { bytes: 4, make: (b, o, n) => new Float32Array(b, o, n) },
  F64: { bytes: 8, make: (b, o, n) => new Float64Array(b, o, n) },
  I32: { bytes: 4, make: (b, o, n) => new Int32Array(b, o, n) },
  U8: { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  F16: { bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
};

function dtypeOf(data: TensorData): SafetensorsDtype {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Uint16Array) return 'F16';
  return 'U8';
}

/** The whole file's bytes; tensors are laid out in the order given, 8-byte aligned. */
export function encodeSafetensors(tensors: readonly NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new RangeError(`tensor ${t.name}: shape [${t.shape.join(', ')}] holds ${count} values, the data ${t.data.length}`);
    header[t.name] = { dtype: dtypeOf(t.data), shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
    offset = Math.ceil(offset / 8) * 8;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8); // data starts 8-byte aligned
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  const base = 8 + headerBytes.length;
  for (const t of tensors) {
    const [start] = (header[t.name] as { data_offsets: [number, number] }).data_offsets;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), base + start);
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array, path: string): SafetensorsFile {
  if (bytes.byteLength < 8) throw new SafetensorsError(path, `truncated: ${bytes.byteLength} bytes, not even the header length`);
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength > bytes.byteLength - 8) throw new SafetensorsError(path, `truncated: the header says ${headerLength} bytes, the file has ${bytes.byteLength - 8} after it`);
  const json = Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLength).toString('utf8');
  const { entries, metadata } = parseSafetensorsHeader(json, headerLength, bytes.byteLength, path);
  const base = 8 + headerLength;
  // Copy once into an aligned buffer so typed views need no per-tensor copy.
  const data = new Uint8Array(bytes.byteLength - base);
  data.set(bytes.subarray(base));
  const tensors = new Map<string, NamedTensor>();
  for (const entry of entries.values()) {
    const kind = DTYPES[entry.dtype as SafetensorsDtype];
    if (!kind) throw new SafetensorsError(path, `tensor ${entry.name}: dtype ${entry.dtype} is not one of qalc's own files' (${Object.keys(DTYPES).join(', ')})`);
    const start = entry.start - base;
    if (start % kind.bytes !== 0) throw new SafetensorsError(path, `tensor ${entry.name}: misaligned offset ${start}`);
    tensors.set(entry.name, { name: entry.name, shape: entry.shape, data: kind.make(data.buffer, start, (entry.end - entry.start) / kind.bytes) });
  }
  return { tensors, metadata };
}

export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new SafetensorsError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return decodeSafetensors(bytes, path);
}

/**
 * Written to a temporary file, flushed to disk, then renamed over the target: a run killed at
 * any moment leaves either the old file or the new one, never half of one.
 */
export function writeSafetensorsAtomic(path: string, tensors: readonly NamedTensor[], metadata: Record<string, string> = {}): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temporary, 'w');
  try {
    const bytes = encodeSafetensors(tensors, metadata);
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

export function tensor(file: SafetensorsFile, name: string, path: string): NamedTensor {
  const t = file.tensors.get(name);
  if (!t) throw new SafetensorsError(path, `missing tensor ${name}`);
  return t;
}

/** One tensor's entry in a header, its range checked against the file. */
export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly start: number;
  readonly end: number;
}

const ELEMENT_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I32: 4, U8: 1 };

/** A safetensors file opened for reading tensor by tensor: only the header is held in memory. */
export interface SafetensorsReader {
  readonly path: string;
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  /** The tensor's values widened to float32 (F32, F16 and BF16), read from its offset. */
  readFloat32(name: string): Float32Array;
  /** An I32 tensor (GPTQ's packed codes and group indices), read from its offset. */
  readInt32(name: string): Int32Array;
  close(): void;
}

function readExactly(fd: number, length: number, position: number, path: string, what: string): Buffer {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) throw new SafetensorsError(path, `truncated: ${what} ends past the end of the file`);
    done += n;
  }
  return buffer;
}

/** Validates a header against a file of `fileBytes` bytes: every range inside the data, none overlapping, dtype × shape = length. */
export function parseSafetensorsHeader(json: string, headerLength: number, fileBytes: number, path: string): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(json);
  } catch (e) {
    throw new SafetensorsError(path, `corrupt header: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError(path, 'corrupt header: not a JSON object');
  const base = 8 + headerLength;
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: range } = (raw ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const element = typeof dtype === 'string' ? ELEMENT_BYTES[dtype] : undefined;
    if (element === undefined) throw new SafetensorsError(path, `tensor ${name}: dtype ${JSON.stringify(dtype)} is not one qalc reads (${Object.keys(ELEMENT_BYTES).join(', ')})`);
    const natural = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    if (!Array.isArray(shape) || !shape.every(natural)) throw new SafetensorsError(path, `tensor ${name}: malformed shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(range) || range.length !== 2 || !range.every(natural) || range[1] < range[0]) throw new SafetensorsError(path, `tensor ${name}: malformed data_offsets ${JSON.stringify(range)}`);
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    const [start, end] = range as [number, number];
    if (end - start !== count * element) throw new SafetensorsError(path, `tensor ${name}: ${dtype} [${shape.join(', ')}] needs ${count * element} bytes, its data_offsets [${start}, ${end}] hold ${end - start}`);
    if (base + end > fileBytes) throw new SafetensorsError(path, `truncated: tensor ${name} ends at byte ${base + end}, the file has ${fileBytes}`);
    entries.set(name, { name, dtype: dtype as string, shape: shape as number[], start: base + start, end: base + end });
  }
  const sorted = [...entries.values()].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].start < sorted[i - 1].end) throw new SafetensorsError(path, `tensors ${sorted[i - 1].name} and ${sorted[i].name} overlap in the file (the header lies about their offsets)`);
  }
  return { entries, metadata: ((header as Record<string, unknown>).__metadata__ ?? {}) as Record<string, string> };
}

function widen(bytes: Buffer, dtype: string, count: number): Float32Array {
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  else if (dtype === 'BF16') {
    const word = new DataView(new ArrayBuffer(4));
    for (let i = 0; i < count; i++) { word.setUint32(0, view.getUint16(2 * i, true) << 16); out[i] = word.getFloat32(0); }
  } else if (dtype === 'F16') for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  else throw new Error(`internal: widen ${dtype}`);
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Opens `path`, reads and validates its header; tensors are read later, each from its offset. */
export function openSafetensors(path: string): SafetensorsReader {
  let fd: number;
  let fileBytes: number;
  try {
    fd = openSync(path, 'r');
    fileBytes = fstatSync(fd).size;
  } catch (e) {
    throw new SafetensorsError(path, `cannot read: ${systemErrorReason(e)}`);
  }
  try {
    if (fileBytes < 8) throw new SafetensorsError(path, `truncated: ${fileBytes} bytes, not even the header length`);
    const headerLength = Number(readExactly(fd, 8, 0, path, 'the header length').readBigUInt64LE(0));
    if (headerLength > fileBytes - 8) throw new SafetensorsError(path, `truncated: the header says ${headerLength} bytes, the file has ${fileBytes - 8} after it`);
    const { entries, metadata } = parseSafetensorsHeader(readExactly(fd, headerLength, 8, path, 'the header').toString('utf8'), headerLength, fileBytes, path);
    return {
      path, entries, metadata,
      readFloat32(name) {
        const entry = entries.get(name);
        if (!entry) throw new SafetensorsError(path, `missing tensor ${name}`);
        if (!['F32', 'F16', 'BF16'].includes(entry.dtype)) throw new SafetensorsError(path, `tensor ${name}: dtype ${entry.dtype}, a weight must be F32, F16 or BF16`);
        const count = entry.shape.reduce((a, b) => a * b, 1);
        return widen(readExactly(fd, entry.end - entry.start, entry.start, path, `tensor ${name}`), entry.dtype, count);
      },
      readInt32(name) {
        const entry = entries.get(name);
        if (!entry) throw new SafetensorsError(path, `missing tensor ${name}`);
        if (entry.dtype !== 'I32') throw new SafetensorsError(path, `tensor ${name}: dtype ${entry.dtype}, expected I32`);
        const bytes = readExactly(fd, entry.end - entry.start, entry.start, path, `tensor ${name}`);
        const out = new Int32Array(bytes.length / 4);
        for (let i = 0; i < out.length; i++) out[i] = bytes.readInt32LE(4 * i);
        return out;
      },
      close: () => closeSync(fd),
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
