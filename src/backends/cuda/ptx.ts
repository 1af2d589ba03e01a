// `qalc inspect --kernel NAME --target ptx`: the PTX nvcc makes of one emitted kernel, for
// reading what the tensor-core and dequantization code became.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findNvcc } from './nvcc.ts';

export async function ptxOf(fileName: string, source: string, arch: 'sm_80' | 'sm_90a' = 'sm_90a'): Promise<string> {
  const nvcc = await findNvcc();
  if (!nvcc) throw new Error('nvcc is not on PATH: PTX needs the CUDA toolkit (set QALC_NVCC to its nvcc)');
  const dir = mkdtempSync(join(tmpdir(), 'qalc-ptx-'));
  try {
    writeFileSync(join(dir, fileName), source);
    const compute = arch === 'sm_90a' ? 'compute_90a' : 'compute_80';
    await promisify(execFile)(nvcc.path, ['-std=c++17', '-O3', `-arch=${compute}`, '-ptx', join(dir, fileName), '-o', join(dir, 'kernel.ptx')], { maxBuffer: 64 << 20 });
    return readFileSync(join(dir, 'kernel.ptx'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
