// The nvcc command line, in one place: the builder (nvcc.ts) runs it, every emitted header
// prints it. Per target arch one fatbin: sm_80 SASS; sm_90a SASS plus compute_90 PTX (so a
// later GPU can JIT the portable part). Warnings are errors; -Xptxas -v reports registers,
// shared memory and spills, which nvcc.ts stores beside the source.
import { shellWord } from '../escape.ts';

export type CudaArch = 'sm_80' | 'sm_90a';

export const CUDA_ARCHES: readonly CudaArch[] = ['sm_80', 'sm_90a'];

const GENCODES: Readonly<Record<CudaArch, readonly string[]>> = {
  sm_80: ['-gencode=arch=compute_80,code=sm_80'],
  sm_90a: ['-gencode=arch=compute_90a,code=sm_90a', '-gencode=arch=compute_90,code=compute_90'],
};

/** Flags shared by every build, fatbin or object. */
export const COMMON_FLAGS: readonly string[] = ['-std=c++17', '-O3', '-Werror', 'all-warnings', '-Xptxas', '-v'];

/** nvcc arguments that turn `source` into `output` (a fatbin) for one arch. */
export function fatbinArguments(arch: CudaArch, source: string, output: string): string[] {
  return [...COMMON_FLAGS, ...GENCODES[arch], '-fatbin', source, '-o', output];
}

/** As a header shows it, for every arch. */
export function compileCommands(source: string): string[] {
  const stem = source.replace(/\.cu$/, '');
  return CUDA_ARCHES.map((arch) => `nvcc ${fatbinArguments(arch, source, `${stem}.${arch}.fatbin`).map(shellWord).join(' ')}`);
}
