// A llama2.c checkpoint written byte by byte, so a test can make one of any shape, odd or broken.
import { writeFileSync } from 'node:fs';
import type { Architecture } from '../../src/model/architecture.ts';

/** The 28-byte header, then `floats` weights (0.01 each unless `at` says otherwise). */
export function llama2cBytes(arch: Architecture, floats: number, at: Readonly<Record<number, number>> = {}): Uint8Array {
  const bytes = new Uint8Array(28 + 4 * floats);
  const view = new DataView(bytes.buffer);
  const header = [arch.dim, arch.hiddenDim, arch.layers, arch.heads, arch.kvHeads, arch.tiedEmbeddings ? arch.vocab : -arch.vocab, arch.context];
  header.forEach((value, i) => view.setInt32(4 * i, value, true));
  for (let i = 0; i < floats; i++) view.setFloat32(28 + 4 * i, at[i] ?? 0.01, true);
  return bytes;
}

export function writeLlama2c(path: string, arch: Architecture, floats: number, at?: Readonly<Record<number, number>>): string {
  writeFileSync(path, llama2cBytes(arch, floats, at));
  return path;
}
