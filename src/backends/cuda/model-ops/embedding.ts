// Token embedding on CUDA: a row gather out[r, :] = table[tokens[r], :] (src/runtime/typescript/
// embedding.ts). The table is frozen, so there is no backward. forwardFromActivationTable reads the
// table in the activation type (what PyTorch's bf16 model holds: half the memory, 250 MB instead of
// 500 at the 7B shape) and writes the float32 residual stream from its widened values.
import type { ModelOpKernel, ModelOpParameter } from '../model-ops.ts';
import { activationInput, activationType, entryPoint, input, output, pointer, u32, type ModelShapes, type EntryDescription } from './shapes.ts';

export const EMBEDDING_THREADS = 256;

export function embeddingKernel(shapes: ModelShapes): ModelOpKernel {
  const { vocab, dim } = shapes;
  const type = activationType('embedding', shapes);
  const kernel = `embedding_v${vocab}_c${dim}_${shapes.activation}`;
  const gather = (table: ModelOpParameter, computes: string): EntryDescription => ({
    parameters: [
      output('out', `[rows, ${dim}]`),
      pointer('tokens', 'const int32_t*', `int32 [rows], read; each in [0, ${vocab}): the runtime checks them on the host as the TypeScript op does (a kernel given one outside writes NaN to its row)`),
      table,
      u32('rows', 'tokens in the call (batch * seqLen)'),
    ],
    block: [EMBEDDING_THREADS, 1, 1],
    grid: `grid.x = rows, grid.y = ceil(${dim} / ${EMBEDDING_THREADS})`,
    computes,
  });
  return {
    kernel, op: 'embedding', template: 'ops/embedding.cu.hbs',
    constants: { VOCAB: vocab, CHANNELS: dim, THREADS: EMBEDDING_THREADS },
    entryPoints: [
      entryPoint(kernel, 'forward', gather(input('table', `[${vocab}, ${dim}]`), 'out[r, c] = table[tokens[r], c]')),
      entryPoint(kernel, 'forwardFromActivationTable', gather(activationInput(type, 'table', `[${vocab}, ${dim}]`), 'out[r, c] = float(table[tokens[r], c])')),
    ],
  };
}
