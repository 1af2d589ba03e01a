// A GGUF file read back: the header through @huggingface/gguf (what it does well), the tensors
// F32 and Q4_1 decoded here as ggml decodes them. For checking what qalc wrote, and for running
// a GGUF's own weights through qalc's inference.
import { readFileSync } from 'node:fs';
import { gguf, type GGUFTypedMetadata } from '@huggingface/gguf';
import { decodeQ4_1 } from './q4-1.ts';
import { GGML_TYPE, GGUF_ALIGNMENT } from './write-gguf.ts';

export interface GgufTensor {
  readonly name: string;
  /** ggml ne, innermost first. */
  readonly ne: readonly number[];
  readonly type: number;
  /** The raw bytes as stored. */
  readonly bytes: Uint8Array;
  /** The values as ggml dequantizes them, row-major [ne1, ne0]. */
  readonly values: Float32Array;
}

export interface GgufContents {
  readonly metadata: GGUFTypedMetadata;
  readonly tensors: readonly GgufTensor[];
  /** Where the tensor data starts: aligned to 32, as llama.cpp requires. */
  readonly dataOffset: number;
}

export async function readGguf(path: string): Promise<GgufContents> {
  const parsed = await gguf(path, { allowLocalFile: true, typedMetadata: true });
  const file = readFileSync(path);
  const dataOffset = Number(parsed.tensorDataOffset);
  if (dataOffset % GGUF_ALIGNMENT !== 0) throw new Error(`${path}: tensor data at ${dataOffset}, not aligned to ${GGUF_ALIGNMENT}`);
  const tensors = parsed.tensorInfos.map((info): GgufTensor => {
    const ne = info.shape.map(Number);
    const count = ne.reduce((a, b) => a * b, 1);
    const start = dataOffset + Number(info.offset);
    const type = Number(info.dtype);
    const size = type === GGML_TYPE.Q4_1 ? (count / 32) * 20 : type === GGML_TYPE.F32 ? count * 4 : NaN;
    if (Number.isNaN(size)) throw new Error(`${path}: tensor ${info.name} has ggml type ${type}, which this reader does not decode`);
    if (start + size > file.length) throw new Error(`${path}: tensor ${info.name} runs past the end of the file`);
    const bytes = new Uint8Array(file.buffer, file.byteOffset + start, size);
    const values = type === GGML_TYPE.Q4_1 ? decodeQ4_1(bytes, count / ne[0]!, ne[0]!) : new Float32Array(Uint8Array.from(bytes).buffer);
    return { name: info.name, ne, type, bytes, values };
  });
  return { metadata: parsed.typedMetadata, tensors, dataOffset };
}
