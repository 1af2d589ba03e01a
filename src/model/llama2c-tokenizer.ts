// llama2.c's tokenizer file (tokenizer.bin / tok512.bin), read into run.c's encoder.
//
// File: int32 max_token_length, then for each token: float32 score, int32 byte length, the
// piece's bytes (no terminator). The vocabulary size is not stored: the file holds pieces up to
// its end. Ids 0, 1, 2 are <unk>, <s> (BOS), </s> (EOS); ids 3..258 the byte pieces <0x00>..<0xFF>.
import { binary, ScoredBpeTokenizer } from './scored-bpe.ts';
import { TokenizerError } from './tokenizer.ts';

/** Parses tokenizer.bin bytes; `path` only names the file in errors. */
export function parseLlama2cTokenizer(bytes: Uint8Array, path: string): ScoredBpeTokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (offset: number, n: number, what: string) => {
    if (offset + n > bytes.byteLength) {
      throw new TokenizerError(path, `the file ends in ${what} (byte ${offset}, file is ${bytes.byteLength} bytes): is it a llama2.c tokenizer.bin?`);
    }
  };
  need(0, 4, 'max_token_length');
  const maxTokenLength = view.getInt32(0, true);
  const pieces: string[] = [];
  const scores: number[] = [];
  for (let offset = 4; offset < bytes.byteLength;) {
    const id = pieces.length;
    need(offset, 8, `the header of token ${id}`);
    scores.push(view.getFloat32(offset, true));
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (length < 0 || length > maxTokenLength) {
      throw new TokenizerError(path, `token ${id} has length ${length}, max_token_length is ${maxTokenLength}: is it a llama2.c tokenizer.bin?`);
    }
    need(offset, length, `the bytes of token ${id}`);
    pieces.push(binary(bytes.subarray(offset, offset + length)));
    offset += length;
  }
  if (pieces.length < 3) throw new TokenizerError(path, `${pieces.length} tokens: a llama2.c tokenizer has at least <unk>, <s> and </s>`);
  return new ScoredBpeTokenizer({ pieces, scores: Float32Array.from(scores), unk: 0, bos: 1, eos: 2, fingerprint: bytes });
}
