// Reads the 28-byte header of a llama2.c checkpoint (the "legacy" version 0 format of run.c):
// seven little-endian int32 — dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
// seq_len — where a negative vocab_size means the classifier is stored separately (not tied).
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { LLAMA_ROPE_AND_NORM, type Architecture } from './architecture.ts';

export const LLAMA2C_HEADER_BYTES = 28;

export class CheckpointError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${path}: ${message}`);
    this.name = 'CheckpointError';
  }
}

/** Parses the header bytes; `path` only names the file in errors. */
export function parseLlama2cHeader(bytes: Uint8Array, path: string): Architecture {
  if (bytes.byteLength < LLAMA2C_HEADER_BYTES) {
    throw new CheckpointError(path, `truncated llama2.c checkpoint: ${bytes.byteLength} bytes, the header alone needs ${LLAMA2C_HEADER_BYTES}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, LLAMA2C_HEADER_BYTES);
  const field = (i: number) => view.getInt32(i * 4, true);
  const [dim, hiddenDim, layers, heads, kvHeads, signedVocab, context] = [0, 1, 2, 3, 4, 5, 6].map(field);
  const arch: Architecture = {
    dim, hiddenDim, layers, heads, kvHeads,
    vocab: Math.abs(signedVocab),
    context,
    tiedEmbeddings: signedVocab > 0,
    ...LLAMA_ROPE_AND_NORM, // run.c's, which the format does not store
  };
  const positive: Array<[string, number]> = [
    ['dim', dim], ['hidden_dim', hiddenDim], ['n_layers', layers], ['n_heads', heads],
    ['n_kv_heads', kvHeads], ['vocab_size', arch.vocab], ['seq_len', context],
  ];
  for (const [name, value] of positive) {
    if (!(value > 0 && value < 1 << 24)) {
      throw new CheckpointError(path, `not a llama2.c checkpoint: header field ${name} = ${value}`);
    }
  }
  if (dim % heads !== 0 || heads % kvHeads !== 0) {
    throw new CheckpointError(path, `not a llama2.c checkpoint: dim ${dim}, n_heads ${heads}, n_kv_heads ${kvHeads} do not divide`);
  }
  return arch;
}

/** Number of float32 weights the file must hold after the header for this architecture. */
export function llama2cWeightCount(arch: Architecture): number {
  const { dim, hiddenDim, layers, heads, kvHeads, vocab, context } = arch;
  const head = dim / heads;
  const kvDim = head * kvHeads;
  const perLayer = dim /* rms_att */ + dim * dim /* wq */ + 2 * dim * kvDim /* wk, wv */ + dim * dim /* wo */
    + dim /* rms_ffn */ + 3 * dim * hiddenDim /* w1, w2, w3 */;
  const ropeTables = context * head; // freq_cis_real and freq_cis_imag, each seq_len × head/2
  return vocab * dim + layers * perLayer + dim + ropeTables + (arch.tiedEmbeddings ? 0 : vocab * dim);
}

/** Reads only the header and checks that the file is long enough for the weights it declares. */
export function readLlama2cArchitecture(path: string): Architecture {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const header = new Uint8Array(LLAMA2C_HEADER_BYTES);
    readSync(fd, header, 0, LLAMA2C_HEADER_BYTES, 0);
    const arch = parseLlama2cHeader(header.subarray(0, Math.min(size, LLAMA2C_HEADER_BYTES)), path);
    const expected = LLAMA2C_HEADER_BYTES + 4 * llama2cWeightCount(arch);
    if (size < expected) {
      throw new CheckpointError(path, `truncated llama2.c checkpoint: ${size} bytes, the header declares ${expected}`);
    }
    return arch;
  } finally {
    closeSync(fd);
  }
}
