// Token embedding on CUDA: a row gather out[r, :] = table[tokens[r], :] (src/runtime/typescript/
// embedding.ts). The table is frozen, so there is no backward.
import type { ModelOpKernel } from '../model-ops.ts';
import { entryPoint, input, output, pointer, u32, type ModelShapes } from './shapes.ts';

export const EMBEDDING_THREADS = 256;

export function embeddingKernel(shapes: ModelShapes): ModelOpKernel {
  const { vocab, dim } = shapes;
  const kernel = `embedding_v${vocab}_c${dim}_f32`;
  return {
    kernel, op: 'embedding', template: 'ops/embedding.cu.hbs',
    constants: { VOCAB: vocab, CHANNELS: dim, THREADS: EMBEDDING_THREADS },
    entryPoints: [
      entryPoint(kernel, 'forward', {
        parameters: [
          output('out', `[rows, ${dim}]`),
          pointer('tokens', 'const int32_t*', `int32 [rows], read; each in [0, ${vocab}): the runtime checks them on the host as the TypeScript op does (a kernel given one outside writes NaN to its row)`),
          input('table', `[${vocab}, ${dim}]`),
          u32('rows', 'tokens in the call (batch * seqLen)'),
        ],
        block: [EMBEDDING_THREADS, 1, 1],
        grid: `grid.x = rows, grid.y = ceil(${dim} / ${EMBEDDING_THREADS})`,
        computes: 'out[r, c] = table[tokens[r], c]',
      }),
    ],
  };
}
