// Shared by the native CPU backend tests: the addon (the tests skip with a note when it is not
// built), running a computation under 1 and 2 threads, and the error measure.
import { cpuAddon, cpuAddonAvailable, type CpuAddon } from '../../../src/runtime/cpu/addon.ts';
import { createRng, type Rng } from '../../../src/reference/random.ts';

export const nativeBuilt = cpuAddonAvailable();
if (!nativeBuilt) console.warn('qalc_cpu.node is not built (npx node-gyp rebuild): skipping the native CPU backend tests');

export const addon = (): CpuAddon => cpuAddon();

/**
 * Runs `compute` (which must build its inputs afresh each time) with 1 thread and with 2,
 * every chunk of work split to the smallest grain so that even small shapes are cut between
 * the threads, and returns both results; the caller asserts they are identical.
 */
export function withOneAndTwoThreads<T>(compute: () => T): [T, T] {
  const native = addon();
  const grain = native.minChunkWork();
  native.setMinChunkWork(1);
  try {
    native.setThreads(1);
    const one = compute();
    native.setThreads(2);
    const two = compute();
    return [one, two];
  } finally {
    native.setThreads(1);
    native.setMinChunkWork(grain);
  }
}

/** withOneAndTwoThreads for a computation that awaits (QaLoraModel's forward and backward). */
export async function withOneAndTwoThreadsAsync<T>(compute: () => Promise<T>): Promise<[T, T]> {
  const native = addon();
  const grain = native.minChunkWork();
  native.setMinChunkWork(1);
  try {
    native.setThreads(1);
    const one = await compute();
    native.setThreads(2);
    const two = await compute();
    return [one, two];
  } finally {
    native.setThreads(1);
    native.setMinChunkWork(grain);
  }
}

export function randomFloats(rng: Rng, length: number, scale = 1): Float32Array {
  return Float32Array.from({ length }, () => scale * rng.normal());
}

export { createRng };
