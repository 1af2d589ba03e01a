// Emits the CUDA kernels the benchmark times (kernel-set.ts writes them with kernels.json):
// LLaMA-7B's and 13B's projections at the paper's setting (W4, group 32, rank 64, mean pooling,
// dropout, bf16), and the other quantizations of the case list at 4096 x 11008.
//
//   npx tsx test/bench/cuda/emit-bench-kernels.ts OUT_DIR [--quick] [--roles R,R] [--shapes KxN,KxN] [--decode-variants v8a,v8b]
// --quick: the 7B shapes at W4 g32 r64 only. --roles / --shapes: only those kernel roles and
// K x N shapes (a run that measures what changed, compiled in less time). --decode-variants: the
// tensor-core decode kernels again with those bodies (choose-cuda.ts), named <kernel>_<variant>.
import type { DecodeVariant } from '../../../src/ir/passes/choose-cuda.ts';
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
const optionValue = (name: string): string[] | null => {
  const at = process.argv.indexOf(name);
  return at < 0 ? null : (process.argv[at + 1] ?? '').split(',').filter((v) => v !== '');
};
const roles = optionValue('--roles'), shapes = optionValue('--shapes');
const cases = (process.argv.includes('--quick') ? LLAMA_7B : [...LLAMA_7B, ...MORE])
  .filter((c) => shapes === null || shapes.includes(`${c.inFeatures}x${c.outFeatures}`))
  .map((c) => (roles === null ? c : { ...c, roles: (c.roles ?? TRAINING_ROLES).filter((r) => roles.includes(r)) }))
  .filter((c) => c.roles === undefined || c.roles.length > 0);
const decodeVariants = (optionValue('--decode-variants') ?? []) as DecodeVariant[];
const count = writeKernelSet(outDir, cases, 'test/bench/cuda/emit-bench-kernels.ts', { mmaSyncCopies: false, timingTokens: 0, precisions: ['bf16'], decodeVariants });
console.log(`emitted ${count} kernels to ${outDir}`);
