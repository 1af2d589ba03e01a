// qalc's own safetensors files (checkpoints, merged models) are validated by the same header
// check as Hugging Face weights: a lying header is refused, never read out of bounds.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRng } from '../../src/reference/random.ts';
import { decodeSafetensors, encodeSafetensors, openSafetensors } from '../../src/export/safetensors.ts';

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

describe('a fuzzed header', () => {
  it('is read or refused as a SafetensorsError, by both readers, never anything else', () => {
    const bytes = Buffer.from(encodeSafetensors([
      { name: 'w', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => i) },
      { name: 'v', shape: [5], data: Float32Array.from([1, 2, 3, 4, 5]) },
    ]));
    const headerEnd = 8 + Number(bytes.readBigUInt64LE(0));
    const path = join(mkdtempSync(join(tmpdir(), 'qalc-fuzz-')), 'f.safetensors');
    const rng = createRng(12);
    const outcomes = { read: 0, refused: 0 };
    for (let trial = 0; trial < 300; trial++) {
      const mutated = Buffer.from(bytes);
      const edits = 1 + rng.int(3);
      for (let e = 0; e < edits; e++) mutated[rng.int(headerEnd)] = rng.int(256);
      writeFileSync(path, mutated);
      for (const read of [() => decodeSafetensors(mutated, path), () => { const r = openSafetensors(path); try { for (const name of r.entries.keys()) r.readFloat32(name); } finally { r.close(); } }]) {
        try {
          read();
          outcomes.read++;
        } catch (e) {
          expect((e as Error).name, (e as Error).stack).toBe('SafetensorsError');
          expect((e as Error).message.startsWith(`${path}: `)).toBe(true);
          outcomes.refused++;
        }
      }
    }
    expect(outcomes.refused).toBeGreaterThan(100);
  });
});
