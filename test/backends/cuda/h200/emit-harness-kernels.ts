// Emits the CUDA kernels the H200 correctness harness runs, with registry.gen.cpp and
// kernels.json (kernel-set.ts). The case list: ragged K and N, bits 2/3/4/8, groups
// 16/32/43/64/128, zero padding, symmetric, dropout, mean and sum pooling, in fp16 and bf16.
//
// Kernels whose tensor-core variant uses wgmma on sm_90a (choose-cuda.ts: forward and
// backward_data) are emitted twice: as the IR chooses (wgmma on the sm_90a build) and again with
// wgmma turned off, named <kernel>_mmasync, so one sm_90a harness checks both bodies on the same
// GPU. Cases marked `timed` are large layers (forward and backward_data only) that run.sh also
// times (qalc-cuda-harness --time) in both forms.
//
//   npx tsx test/backends/cuda/h200/emit-harness-kernels.ts OUT_DIR [--roles adapter_grad,backward_data] [--decode-variants v8a,v8b]
// --roles: only the kernels of those roles (a device run that checks what a change touched).
// --decode-variants: every tensor-core decode kernel again with those bodies, <kernel>_<variant>.
import type { DecodeVariant } from '../../../../src/ir/passes/choose-cuda.ts';
import type { KernelRole } from '../../../../src/plan/plan.ts';
import { writeKernelSet, type KernelSetCase } from './kernel-set.ts';

export const HARNESS_CASES: readonly KernelSetCase[] = [
  { inFeatures: 172, outFeatures: 100, bits: 4, group: 43, adapter: { rank: 4, pooling: 'mean' } },
  { inFeatures: 96, outFeatures: 72, bits: 3, group: 16, adapter: { rank: 8, pooling: 'mean', dropout: true } },
  { inFeatures: 256, outFeatures: 200, bits: 2, group: 32, adapter: { rank: 16, pooling: 'sum' } },
  { inFeatures: 192, outFeatures: 136, bits: 8, group: 64, adapter: { rank: 8, pooling: 'mean' } },
  { inFeatures: 384, outFeatures: 264, bits: 4, group: 128, adapter: { rank: 64, pooling: 'mean', dropout: true } },
  { inFeatures: 200, outFeatures: 40, bits: 4, group: 32, pad: true, adapter: { rank: 4, pooling: 'mean' } },
  { inFeatures: 80, outFeatures: 24, bits: 3, group: 16, symmetric: true },
  { inFeatures: 129, outFeatures: 33, bits: 3, group: 43, adapter: { rank: 2, pooling: 'mean' } },
  { inFeatures: 1024, outFeatures: 1000, bits: 4, group: 32, adapter: { rank: 16, pooling: 'mean' } },
  // 2-bit codes in groups of whole 4-word k-blocks: the tensor-core decode's 16-codes-a-word path.
  { inFeatures: 320, outFeatures: 76, bits: 2, group: 64, adapter: { rank: 8, pooling: 'sum', dropout: true }, roles: ['decode'] },
  // The decode's v8 body past its first rounds: 157 groups (K zero-padded) over 16 warps, so
  // whole rounds without checks, then a tail where 3 of the warps have no last group.
  { inFeatures: 5000, outFeatures: 4104, bits: 4, group: 32, pad: true, adapter: { rank: 64, pooling: 'mean', dropout: true }, roles: ['decode'] },
  // The v9 decode's wider units and groups (decode-mma-tiling.ts, decodeUnits), ragged N: 3-bit
  // units of 3 words in two subgroups a k-block (6 groups over 16 warps: most warps without one;
  // then K zero-padded past whole rounds), 3-bit g128, 8-bit in groups of 8 k-blocks padded inside
  // the last group, 2-bit g32 subgroups past whole rounds, 4-bit g128 padded.
  { inFeatures: 384, outFeatures: 100, bits: 3, group: 64, adapter: { rank: 8, pooling: 'mean', dropout: true }, roles: ['decode'] },
  { inFeatures: 4064, outFeatures: 1036, bits: 3, group: 64, pad: true, adapter: { rank: 64, pooling: 'mean', dropout: true }, roles: ['decode'] },
  { inFeatures: 640, outFeatures: 72, bits: 3, group: 128, adapter: { rank: 16, pooling: 'sum' }, roles: ['decode'] },
  { inFeatures: 2080, outFeatures: 520, bits: 8, group: 128, pad: true, adapter: { rank: 64, pooling: 'mean', dropout: true }, roles: ['decode'] },
  { inFeatures: 1984, outFeatures: 516, bits: 2, group: 32, adapter: { rank: 64, pooling: 'mean', dropout: true }, roles: ['decode'] },
  { inFeatures: 4000, outFeatures: 1028, bits: 4, group: 128, pad: true, adapter: { rank: 16, pooling: 'mean', dropout: true }, roles: ['decode'] },
  // 4-bit g16, half a k-block a group (stories260K's q/k/v/o and up): v9's subgroups of one-word units.
  { inFeatures: 64, outFeatures: 172, bits: 4, group: 16, adapter: { rank: 4, pooling: 'mean' }, roles: ['decode'] },
  { inFeatures: 528, outFeatures: 68, bits: 4, group: 16, adapter: { rank: 8, pooling: 'sum', dropout: true }, roles: ['decode'] },
  // A 7B-sized projection, forward and backward_data only: checked like the others, and timed at T = 4096.
  { inFeatures: 4096, outFeatures: 4096, bits: 4, group: 128, adapter: { rank: 16, pooling: 'mean' }, roles: ['forward', 'backward_data'], timed: true },
];

/** Tokens of the timed runs (run.sh). */
export const TIMING_TOKENS = 4096;

const outDir = process.argv[2];
if (!outDir) throw new Error('usage: emit-harness-kernels.ts OUT_DIR [--roles ROLE,...]');
const rolesAt = process.argv.indexOf('--roles');
const onlyRoles = rolesAt > 0 ? (process.argv[rolesAt + 1] ?? '').split(',') as KernelRole[] : undefined;
const variantsAt = process.argv.indexOf('--decode-variants');
const decodeVariants = variantsAt > 0 ? (process.argv[variantsAt + 1] ?? '').split(',').filter((v) => v !== '') as DecodeVariant[] : [];
const count = writeKernelSet(outDir, HARNESS_CASES, 'test/backends/cuda/h200/emit-harness-kernels.ts', {
  mmaSyncCopies: true, timingTokens: TIMING_TOKENS, precisions: ['f16', 'bf16'], ...(onlyRoles ? { onlyRoles } : {}), decodeVariants,
});
console.log(`emitted ${count} kernels to ${outDir}`);
