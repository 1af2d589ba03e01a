// safetensors (Hugging Face's tensor file format), read and written here because it is small
// and exact: an 8-byte little-endian header length, a JSON header naming every tensor's dtype,
// shape and byte range, then the bytes. Free-form string metadata rides in "__metadata__".
// Readers check every range against the file, so a truncated file names the tensor it cut.
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export type TensorData = Float32Array | Float64Array | Int32Array | Uint8Array;
export type SafetensorsDtype = 'F32' | 'F64' | 'I32' | 'U8';

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
};

function dtypeOf(data: TensorData): SafetensorsDtype {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
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
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLength).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new SafetensorsError(path, `corrupt header: ${(e as Error).message}`);
  }
  const base = 8 + headerLength;
  const dataLength = bytes.byteLength - base;
  // Copy once into an aligned buffer so typed views need no per-tensor copy.
  const data = new Uint8Array(dataLength);
  data.set(bytes.subarray(base));
  const tensors = new Map<string, NamedTensor>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const { dtype, shape, data_offsets: range } = entry as { dtype: SafetensorsDtype; shape: number[]; data_offsets: [number, number] };
    const kind = DTYPES[dtype];
    if (!kind || !Array.isArray(shape) || !Array.isArray(range)) throw new SafetensorsError(path, `tensor ${name}: unsupported or malformed entry (${JSON.stringify(entry)})`);
    const count = shape.reduce((a, b) => a * b, 1);
    const [start, end] = range;
    if (end - start !== count * kind.bytes) throw new SafetensorsError(path, `tensor ${name}: shape [${shape.join(', ')}] needs ${count * kind.bytes} bytes, its range has ${end - start}`);
    if (end > dataLength) throw new SafetensorsError(path, `truncated: tensor ${name} ends at byte ${end} of the data, which has ${dataLength}`);
    if (start % kind.bytes !== 0) throw new SafetensorsError(path, `tensor ${name}: misaligned offset ${start}`);
    tensors.set(name, { name, shape, data: kind.make(data.buffer, start, count) });
  }
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
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
