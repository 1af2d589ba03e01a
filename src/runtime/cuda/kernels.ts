// The spec's compiled CUDA kernels for the running GPU: the manifest (computed from the plan,
// the same text `qalc compile` writes to manifest.json) and one fatbin per kernel, read from
// the compile output folder (generated/<spec>/cuda by default) when its .cu matches what the
// plan emits now, otherwise built on the spot with nvcc (cached in ~/.cache/qalc/nvcc). Without
// nvcc and without fresh fatbins the error says how to get them.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { emitKernels, manifestOfKernels } from '../../backends/emit-kernels.ts';
import { buildFatbin, findNvcc } from '../../backends/cuda/nvcc.ts';
import type { CudaArch } from '../../backends/cuda/nvcc-flags.ts';
import type { Plan } from '../../plan/plan.ts';
import { TRAINING_ROLES } from '../linear-kernel-choice.ts';
import type { CudaManifestKernel } from './launch.ts';

export class CudaKernelsError extends Error {
  override readonly name = 'CudaKernelsError';
}

export interface CudaKernelImage {
  readonly manifest: CudaManifestKernel;
  readonly fatbin: Uint8Array;
  /** Where the fatbin came from: the compile folder, or nvcc just now. */
  readonly origin: 'compiled' | 'built';
}

export interface CudaKernelSet {
  readonly arch: CudaArch;
  readonly kernels: readonly CudaKernelImage[];
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

/** The source without its leading comment header (which names the spec file), so a copy of a spec reuses the fatbins. */
export function kernelCode(source: string): string {
  const lines = source.split('\n');
  let first = 0;
  while (first < lines.length && (lines[first]!.startsWith('//') || lines[first]!.trim() === '')) first++;
  return lines.slice(first).join('\n');
}

export async function loadCudaKernels(plan: Plan, options: { readonly dir: string; readonly arch: CudaArch; readonly roles?: readonly string[] }): Promise<CudaKernelSet> {
  const { dir, arch } = options;
  const roles = options.roles ?? TRAINING_ROLES;
  const emitted = emitKernels(plan).cuda;
  if (emitted.length === 0) throw new CudaKernelsError(`spec ${plan.spec} has no cuda target (its target blocks name only others)`);
  const planned = plan.targets.cuda?.arch as readonly string[] | undefined;
  if (planned !== undefined && !planned.includes(arch)) {
    throw new CudaKernelsError(`spec ${plan.spec} compiles its CUDA kernels for ${planned.join(', ')}, but this GPU needs ${arch}: add it to \`arch\` in the spec's target cuda block`);
  }
  const manifests = (JSON.parse(manifestOfKernels(plan, { cuda: emitted, wgsl: [] })) as { kernels: CudaManifestKernel[] }).kernels;
  const wanted = emitted.map((e, i) => ({ emitted: e, manifest: manifests[i]! })).filter((k) => roles.includes(k.manifest.role));
  const nvcc = await findNvcc();
  const kernels: CudaKernelImage[] = [];
  const missing: string[] = [];
  await Promise.all(wanted.map(async ({ emitted: e, manifest }) => {
    const stem = join(dir, e.fileName.replace(/\.cu$/, ''));
    const fatbinPath = `${stem}.${arch}.fatbin`;
    const sourcePath = join(dir, e.fileName);
    if (existsSync(fatbinPath) && existsSync(sourcePath) && kernelCode(readFileSync(sourcePath, 'utf8')) === kernelCode(e.source)) {
      kernels.push({ manifest, fatbin: readFileSync(fatbinPath), origin: 'compiled' });
    } else if (nvcc !== null) {
      const build = await buildFatbin(nvcc, e.fileName, e.source, arch);
      kernels.push({ manifest, fatbin: build.fatbin, origin: 'built' });
    } else {
      missing.push(fatbinPath);
    }
  }));
  if (missing.length > 0) {
    throw new CudaKernelsError(
      `no up-to-date fatbin for ${missing.length} of spec ${plan.spec}'s kernels (e.g. ${missing[0]}) and nvcc is not on PATH: ` +
      `run \`qalc compile\` on the spec where nvcc is installed and bring ${dir}, or put nvcc on PATH (or set QALC_NVCC)`,
    );
  }
  kernels.sort((a, b) => a.manifest.kernel.localeCompare(b.manifest.kernel));
  const built = kernels.filter((k) => k.origin === 'built').length;
  return { arch, kernels, summary: `${kernels.length} ${arch} kernels: ${kernels.length - built} from ${dir}, ${built} built with nvcc` };
}
