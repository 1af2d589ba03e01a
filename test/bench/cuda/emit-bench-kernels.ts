// Emits the CUDA kernels the benchmark times (kernel-set.ts writes them with kernels.json):
// LLaMA-7B's and 13B's projections at the paper's setting (W4, group 32, rank 64, mean pooling,
// dropout, bf16), and the other quantizations of the case list at 4096 x 11008.
//
//   npx tsx test/bench/cuda/emit-bench-kernels.ts OUT_DIR [--quick] [--roles decode,forward]
// --quick: the 7B shapes at W4 g32 r64 only. --roles: only the kernels of those roles (a device
// run that measures what a change touched; fewer kernels to compile).
import type { KernelRole } from '../../../src/plan/plan.ts';
import { writeKernelSet, type KernelSetCase } from '../../backends/cuda/h200/kernel-set.ts';

const PAPER = { bits: 4, group: 32, adapter: { rank: 64, pooling: 'mean', dropout: true } } as const;
const TRAINING_ROLES = ['forward', 'decode', 'backward_data', 'adapter_grad', 'dequantize'] as const;

const LLAMA_7B: readonly KernelSetCase[] = [
  { inFeatures: 4096, outFeatures: 4096, ...PAPER, roles: TRAINING_ROLES },
  { inFeatures: 4096, outFeatures: 11008, ...PAPER, roles: TRAINING_ROLES },
  { inFeatures: 11008, outFeatures: 4096, ...PAPER, roles: TRAINING_ROLES },
];

const MORE: readonly KernelSetCase[] = [
  { inFeatures: 5120, outFeatures: 5120, ...PAPER, roles: ['forward', 'decode'] },
  { inFeatures: 5120, outFeatures: 13824, ...PAPER, roles: ['forward', 'decode'] },
  { inFeatures: 13824, outFeatures: 5120, ...PAPER, roles: ['forward', 'decode'] },
  { inFeatures: 4096, outFeatures: 11008, bits: 4, group: 128, adapter: { rank: 16, pooling: 'mean', dropout: true }, roles: ['forward', 'decode'] },
  { inFeatures: 4096, outFeatures: 11008, bits: 3, group: 64, adapter: { rank: 64, pooling: 'mean', dropout: true }, roles: ['forward', 'decode'] },
  { inFeatures: 4096, outFeatures: 11008, bits: 2, group: 32, adapter: { rank: 64, pooling: 'mean', dropout: true }, roles: ['forward', 'decode'] },
  { inFeatures: 4096, outFeatures: 11008, bits: 8, group: 128, adapter: { rank: 64, pooling: 'mean', dropout: true }, roles: ['forward', 'decode'] },
];

const outDir = process.argv[2];
if (!outDir) throw new Error('usage: emit-bench-kernels.ts OUT_DIR [--quick]');
const cases = process.argv.includes('--quick') ? LLAMA_7B : [...LLAMA_7B, ...MORE];
const rolesAt = process.argv.indexOf('--roles');
const onlyRoles = rolesAt > 0 ? (process.argv[rolesAt + 1] ?? '').split(',') as KernelRole[] : undefined;
const count = writeKernelSet(outDir, cases, 'test/bench/cuda/emit-bench-kernels.ts', {
  mmaSyncCopies: false, timingTokens: 0, precisions: ['bf16'], ...(onlyRoles ? { onlyRoles } : {}),
});
console.log(`emitted ${count} kernels to ${outDir}`);
