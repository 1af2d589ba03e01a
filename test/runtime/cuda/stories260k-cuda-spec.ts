// The spec the cuda backend's training tests run on the simulated device: stories260K, 4-bit in
// groups of 16 (43 for down: a ragged group count), rank 4, bf16 activations, batch 2 × 16, two
// steps. `trainSettings`: more lines for its train block (grad_accum = 2).
import { resolve } from 'node:path';

const shared = (path: string) => JSON.stringify(resolve('../shared', path));

export function stories260kCudaSpec(trainSettings = ''): string {
  return `spec stories260k_cuda
model {
  checkpoint = ${shared('models/stories260K/stories260K.bin')}
  tokenizer = ${shared('models/stories260K/tok512.bin')}
}
quant { bits = 4  group = 16 }
override proj down { group = 43 }
adapter { kind = qalora  rank = 4  alpha = 8  dropout = 0.1 }
target cuda { arch = [sm_90a]  activation = bf16 }
train {
  data = ${shared('data/tinyshakespeare.txt')}
  seq_len = 16
  batch = 2
  steps = 2
  lr = 3e-3
  eval_every = 100
  checkpoint_every = 100
${trainSettings}}
`;
}
