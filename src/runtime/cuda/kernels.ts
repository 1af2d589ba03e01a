// The spec's compiled CUDA kernels for the running GPU: their manifest entries, read through the
// compile folder's manifest (../compiled-kernels.ts), and one fatbin per kernel — from the
// fatbin folder (generated/<spec>/cuda by default) when it was built from the very source the
// manifest describes (its codeHash) after that source was written, otherwise built on the spot
// with nvcc (cached in ~/.cache/qalc/nvcc). Without nvcc and without fresh fatbins the error
// says how to get them.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildFatbin, findNvcc } from '../../backends/cuda/nvcc.ts';
import type { CudaArch } from '../../backends/cuda/nvcc-flags.ts';
import { codeHash, type CudaManifestKernel, type ModelOpManifestKernel } from '../../backends/manifest.ts';
import type { Plan } from '../../plan/plan.ts';
import { describeOrigin, loadCompiledKernels } from '../compiled-kernels.ts';
import { TRAINING_ROLES } from '../linear-kernel-choice.ts';

export class CudaKernelsError extends Error {
  override readonly name = 'CudaKernelsError';
}

export interface CudaKernelImage {
  readonly manifest: CudaManifestKernel;
  readonly fatbin: Uint8Array;
  /** Where the fatbin came from: the compile folder, or nvcc just now. */
  readonly origin: 'compiled' | 'built';
}

/** A model op's kernel (every op but the linear layers: src/backends/cuda/model-ops.ts) and its fatbin. */
export interface ModelOpImage {
  readonly manifest: ModelOpManifestKernel;
  readonly fatbin: Uint8Array;
  readonly origin: 'compiled' | 'built';
}

export interface CudaKernelSet {
  readonly arch: CudaArch;
  readonly kernels: readonly CudaKernelImage[];
  /** The quantize and pack kernels, which quantize the frozen weights on the device at setup (device-quantize.ts). */
  readonly quantize: readonly CudaKernelImage[];
  /** Empty when the compile folder's manifest predates them: then only the linear layers run on the GPU. */
  readonly modelOps: readonly ModelOpImage[];
  /** One line for the user: how many were found and how many built. */
  readonly summary: string;
}

/** The arch of the fatbins that run on a GPU of this compute capability. */
export function archFor(computeCapability: readonly [number, number]): CudaArch {
  const [major] = computeCapability;
  if (major >= 9) return 'sm_90a'; // sm_90a SASS on 9.0, its compute_90 PTX JIT-compiled on later GPUs
  if (major === 8) return 'sm_80';
  throw new CudaKernelsError(`compute capability ${computeCapability.join('.')} is older than the sm_80 qalc's kernels need (tensor cores, cp.async, bf16)`);
}

/** The fatbin beside `source` in `dir`, if it was built from that very code after the source was written. */
function freshFatbin(dir: string, kernel: { readonly file: string; readonly codeHash: string }, arch: CudaArch): Uint8Array | undefined {
  const fileName = kernel.file.replace(/^cuda\//, '');
  const sourcePath = join(dir, fileName);
  const fatbinPath = join(dir, `${fileName.replace(/\.cu$/, '')}.${arch}.fatbin`);
  if (!existsSync(fatbinPath) || !existsSync(sourcePath)) return undefined;
  if (codeHash(readFileSync(sourcePath, 'utf8')) !== kernel.codeHash) return undefined;
  if (statSync(fatbinPath).mtimeMs < statSync(sourcePath).mtimeMs) return undefined;
  return readFileSync(fatbinPath);
}

/** The training roles and dequantize: the cuda backend multiplies Ŵ on cuBLAS at training sizes (gemm-linear.ts). */
export const CUDA_TRAINING_ROLES: readonly string[] = [...TRAINING_ROLES, 'dequantize'];

/** The roles whose kernels quantize the frozen weights on the device (CudaKernelSet.quantize). */
export const QUANTIZE_ROLES: readonly string[] = ['quantize', 'pack'];

export async function loadCudaKernels(plan: Plan, options: { readonly dir: string; readonly arch: CudaArch; readonly roles?: readonly string[]; readonly quantizeRoles?: readonly string[]; readonly compileDir?: string }): Promise<CudaKernelSet> {
  const { dir, arch } = options;
  const roles = options.roles ?? CUDA_TRAINING_ROLES;
  const compiled = await loadCompiledKernels(plan, { ...(options.compileDir !== undefined ? { dir: options.compileDir } : {}), targets: ['cuda'] });
  const cuda = compiled.manifest.kernels.filter((k): k is CudaManifestKernel => k.target === 'cuda');
  if (cuda.length === 0) throw new CudaKernelsError(`spec ${plan.spec} has no cuda target (its target blocks name only others)`);
  const planned = plan.targets.cuda?.arch as readonly string[] | undefined;
  if (planned !== undefined && !planned.includes(arch)) {
    throw new CudaKernelsError(`spec ${plan.spec} compiles its CUDA kernels for ${planned.join(', ')}, but this GPU needs ${arch}: add it to \`arch\` in the spec's target cuda block`);
  }
  const nvcc = await findNvcc();
  const missing: string[] = [];
  /** The fresh fatbin of `manifest` in `dir`, else one nvcc builds now, else undefined (and it is missing). */
  const imageOf = async (manifest: { readonly kernel: string; readonly file: string; readonly codeHash: string }) => {
    const fatbin = freshFatbin(dir, manifest, arch);
    if (fatbin !== undefined) return { fatbin, origin: 'compiled' as const };
    if (nvcc !== null) return { fatbin: (await buildFatbin(nvcc, manifest.file.replace(/^cuda\//, ''), compiled.text(manifest.file), arch)).fatbin, origin: 'built' as const };
    missing.push(join(dir, `${manifest.file.replace(/^cuda\//, '').replace(/\.cu$/, '')}.${arch}.fatbin`));
    return undefined;
  };
  const kernels: CudaKernelImage[] = [];
  const quantize: CudaKernelImage[] = [];
  const modelOps: ModelOpImage[] = [];
  const quantizeRoles = options.quantizeRoles ?? QUANTIZE_ROLES;
  await Promise.all([
    ...cuda.filter((k) => roles.includes(k.role) || quantizeRoles.includes(k.role)).map(async (manifest) => {
      const image = await imageOf(manifest);
      if (image !== undefined) (roles.includes(manifest.role) ? kernels : quantize).push({ manifest, ...image });
    }),
    ...compiled.manifest.modelOps.map(async (manifest) => {
      const image = await imageOf(manifest);
      if (image !== undefined) modelOps.push({ manifest, ...image });
    }),
  ]);
  if (missing.length > 0) {
    throw new CudaKernelsError(
      `no up-to-date fatbin for ${missing.length} of spec ${plan.spec}'s kernels (e.g. ${missing[0]}) and nvcc is not on PATH: ` +
      `run \`qalc compile\` on the spec where nvcc is installed and bring ${dir}, or put nvcc on PATH (or set QALC_NVCC)`,
    );
  }
  kernels.sort((a, b) => a.manifest.kernel.localeCompare(b.manifest.kernel));
  quantize.sort((a, b) => a.manifest.kernel.localeCompare(b.manifest.kernel));
  modelOps.sort((a, b) => a.manifest.kernel.localeCompare(b.manifest.kernel));
  const all = [...kernels, ...quantize, ...modelOps];
  const built = all.filter((k) => k.origin === 'built').length;
  return {
    arch, kernels, quantize, modelOps,
    summary: `${kernels.length} linear, ${quantize.length} quantize and pack, and ${modelOps.length} model-op ${arch} kernels (manifest ${describeOrigin(compiled)}): ${all.length - built} fatbins from ${dir}, ${built} built with nvcc`,
  };
}
