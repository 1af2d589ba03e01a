// qalc's own safetensors files (checkpoints, merged models) are validated by the same header
// check as Hugging Face weights: a lying header is refused, never read out of bounds.
import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from '../../src/export/safetensors.ts';

function withHeader(bytes: Uint8Array, edit: (header: Record<string, { data_offsets: number[]; shape: number[]; dtype: string }>) => void): Uint8Array {
  const length = Number(Buffer.from(bytes).readBigUInt64LE(0));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + length)).toString('utf8'));
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, Buffer.from(bytes.subarray(8 + length))]);
}

describe('decoding a safetensors file', () => {
  const bytes = encodeSafetensors([
    { name: 'a', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
    { name: 'b', shape: [4], data: Float32Array.from([7, 8, 9, 10]) },
  ], { note: 'x' });

  it('reads back what it wrote', () => {
    const file = decodeSafetensors(bytes, 'f.safetensors');
    expect([...file.tensors.get('b')!.data]).toEqual([7, 8, 9, 10]);
    expect(file.metadata).toEqual({ note: 'x' });
  });

  it('refuses overlapping ranges, a range past the end and a dtype × shape mismatch, naming the tensor', () => {
    expect(() => decodeSafetensors(withHeader(bytes, (h) => { h.b.data_offsets = [8, 24]; }), 'f.safetensors')).toThrow('f.safetensors: tensors a and b overlap in the file');
    expect(() => decodeSafetensors(withHeader(bytes, (h) => { h.b.data_offsets = [24, 24 + 16 * 1000]; h.b.shape = [4000]; }), 'f.safetensors')).toThrow(/f\.safetensors: truncated: tensor b ends at byte \d+, the file has \d+/);
    expect(() => decodeSafetensors(withHeader(bytes, (h) => { h.a.shape = [3, 3]; }), 'f.safetensors')).toThrow('f.safetensors: tensor a: F32 [3, 3] needs 36 bytes, its data_offsets [0, 24] hold 24');
    expect(() => decodeSafetensors(withHeader(bytes, (h) => { h.a.data_offsets = [-4, 20]; }), 'f.safetensors')).toThrow('f.safetensors: tensor a: malformed data_offsets [-4,20]');
  });
});
