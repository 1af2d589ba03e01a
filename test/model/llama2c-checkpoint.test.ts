// Reading a llama2.c checkpoint's weights: what cannot be run is refused, naming the file and the
// tensor, before anything computes with it.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Architecture } from '../../src/model/architecture.ts';
import { llama2cWeightCount } from '../../src/model/llama2c-header.ts';
import { CheckpointError, readLlama2cCheckpoint } from '../../src/model/llama2c-checkpoint.ts';
import { writeLlama2c } from '../support/llama2c-file.ts';

const work = mkdtempSync(join(tmpdir(), 'qalc-llama2c-'));
const ARCH: Architecture = { dim: 8, hiddenDim: 12, layers: 2, heads: 2, kvHeads: 2, vocab: 11, context: 4, tiedEmbeddings: true, ropeTheta: 10000, rmsNormEps: 1e-5 };

function refusal(read: () => unknown): string {
  try {
    read();
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    return (e as Error).message;
  }
  throw new Error('expected the checkpoint to be refused');
}

describe('reading a llama2.c checkpoint', () => {
  it('reads a whole one', () => {
    const path = writeLlama2c(join(work, 'good.bin'), ARCH, llama2cWeightCount(ARCH));
    expect(readLlama2cCheckpoint(path).layers).toHaveLength(2);
  });

  it('names a missing file or a folder instead of failing with a stack trace', () => {
    expect(refusal(() => readLlama2cCheckpoint(join(work, 'missing.bin')))).toBe(`${join(work, 'missing.bin')}: cannot read the checkpoint: no such file`);
    mkdirSync(join(work, 'folder.bin'));
    expect(refusal(() => readLlama2cCheckpoint(join(work, 'folder.bin')))).toBe(`${join(work, 'folder.bin')}: cannot read the checkpoint: it is a folder`);
  });

  it('refuses a weight that is NaN or infinite, naming the tensor and where in it', () => {
    // token_embedding is 11×8 = 88 floats, then rms_att 2×8, then wq: float 104 + 8·2 + 3 is wq[2, 3] of layer 0.
    const path = writeLlama2c(join(work, 'nan.bin'), ARCH, llama2cWeightCount(ARCH), { [104 + 19]: NaN });
    expect(refusal(() => readLlama2cCheckpoint(path))).toBe(`${path}: tensor layers.0.wq [8, 8] holds NaN at [2, 3]: the checkpoint is damaged, or was saved from a run that diverged`);
    const infinite = writeLlama2c(join(work, 'inf.bin'), ARCH, llama2cWeightCount(ARCH), { 90: -Infinity });
    expect(refusal(() => readLlama2cCheckpoint(infinite))).toContain('tensor layers.0.rms_att [8] holds -Infinity at [2]');
  });

  it('refuses an odd head size', () => {
    const odd = { ...ARCH, dim: 6, heads: 2, kvHeads: 2 };
    const path = writeLlama2c(join(work, 'odd.bin'), odd, 5000);
    expect(refusal(() => readLlama2cCheckpoint(path))).toBe(`${path}: the head size is odd: dim = 6 / n_heads = 2 = 3, and RoPE rotates pairs of dimensions`);
  });
});
