// Reading qalc's merged model back: a tensor with NaN or infinite values is refused by name, so
// eval and generate never print "loss NaN" or a page of <unk> with exit status 0.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeModel, readMergedModelAsDense, writeMergedModel } from '../../src/export/merged-model.ts';
import { readSafetensors, SafetensorsError, writeSafetensorsAtomic } from '../../src/export/safetensors.ts';
import type { Llama2cCheckpoint } from '../../src/model/llama2c-checkpoint.ts';
import { QaLoraModel } from '../../src/train/qalora-model.ts';
import { specForEveryProjection } from '../../src/train/qalora-spec.ts';
import { randomCheckpoint, TINY_ARCH } from '../train/tiny-model.ts';

const work = mkdtempSync(join(tmpdir(), 'qalc-merged-'));

function mergedFile(): string {
  const weights = randomCheckpoint(TINY_ARCH, 3);
  const model = new QaLoraModel(weights as Llama2cCheckpoint, specForEveryProjection(TINY_ARCH, () => ({ bits: 4, group: 4, adapter: null })));
  const path = join(work, `merged-${Math.random().toString(36).slice(2)}.safetensors`);
  writeMergedModel(path, mergeModel(model, weights, 'tiny'));
  return path;
}

/** The same file with `value` written into one element of one tensor. */
function poisoned(path: string, tensorName: string, index: number, value: number): string {
  const file = readSafetensors(path);
  const tensors = [...file.tensors.values()].map((t) => {
    if (t.name !== tensorName) return t;
    const data = Float32Array.from(t.data as Float32Array);
    data[index] = value;
    return { ...t, data };
  });
  const out = path.replace('.safetensors', `-${tensorName}.safetensors`);
  writeSafetensorsAtomic(out, tensors, { ...file.metadata });
  return out;
}

describe('reading a merged model', () => {
  it('reads a clean one', () => {
    expect(readMergedModelAsDense(mergedFile()).layers).toHaveLength(TINY_ARCH.layers);
  });

  it.each([
    ['model.layers.1.mlp.down_proj.scales', 5, NaN, 'NaN'],
    ['model.layers.0.self_attn.k_proj.zeros', 0, Infinity, 'Infinity'],
    ['model.norm.weight', 7, NaN, 'NaN'],
    ['model.embed_tokens.weight', 12, -Infinity, '-Infinity'],
  ])('refuses %s with a non-finite value at %i, by name', (name, index, value, shown) => {
    const path = poisoned(mergedFile(), name, index, value);
    expect(() => readMergedModelAsDense(path)).toThrow(SafetensorsError);
    expect(() => readMergedModelAsDense(path)).toThrow(new RegExp(`: tensor ${name.replace(/\./g, '\\.')} holds ${shown} at index ${index}`));
  });
});

describe('a merged model that is not whole', () => {
  const rewritten = (path: string, change: (t: { name: string; shape: readonly number[]; data: Float32Array | Int32Array }) => typeof t | undefined, metadata: Record<string, string> = {}) => {
    const file = readSafetensors(path);
    const tensors = [...file.tensors.values()].map((t) => change(t as never)).filter((t) => t !== undefined);
    const out = path.replace('.safetensors', `-${Math.random().toString(36).slice(2)}.safetensors`);
    writeSafetensorsAtomic(out, tensors as never, { ...file.metadata, ...metadata });
    return out;
  };
  const refusal = (path: string) => {
    try {
      readMergedModelAsDense(path);
    } catch (e) {
      expect(e).toBeInstanceOf(SafetensorsError);
      return (e as Error).message.slice(path.length + 2);
    }
    throw new Error('expected the model to be refused');
  };

  it('names metadata that is missing or wrong', () => {
    const path = mergedFile();
    const noArchitecture = rewritten(path, (t) => t, { architecture: '' });
    expect(refusal(noArchitecture)).toBe("its metadata 'architecture' is not valid JSON");
    expect(refusal(rewritten(path, (t) => t, { architecture: '{"dim": 8}' }))).toBe("its metadata 'architecture' lacks hiddenDim, or it is not a positive integer");
    expect(refusal(rewritten(path, (t) => t, { quantization: 'nope' }))).toBe("its metadata 'quantization' is not valid JSON");
    const quantization = JSON.parse(readSafetensors(path).metadata.quantization!) as Record<string, unknown>;
    quantization['model.layers.0.mlp.up_proj'] = { bits: 5, group: 4 };
    expect(refusal(rewritten(path, (t) => t, { quantization: JSON.stringify(quantization) }))).toBe('model.layers.0.mlp.up_proj: bits 5 and group 4 are not a quantization qalc writes');
    // A padded record must pad by less than one group, to a multiple of it.
    quantization['model.layers.0.mlp.up_proj'] = { bits: 4, group: 4, paddedInFeatures: 16 };
    expect(refusal(rewritten(path, (t) => t, { quantization: JSON.stringify(quantization) }))).toBe('model.layers.0.mlp.up_proj: bits 4 and group 4 with in-features 8 padded to 16 are not a quantization qalc writes');
  });

  it('reads θ and ε from the architecture, LLaMA\'s when a file from before them lacks them, and refuses bad ones', () => {
    const path = mergedFile();
    const { ropeTheta: _theta, rmsNormEps: _eps, ...shapes } = JSON.parse(readSafetensors(path).metadata.architecture!) as Record<string, unknown>;
    expect(readMergedModelAsDense(path).arch).toMatchObject({ ropeTheta: TINY_ARCH.ropeTheta, rmsNormEps: TINY_ARCH.rmsNormEps });
    expect(readMergedModelAsDense(rewritten(path, (t) => t, { architecture: JSON.stringify(shapes) })).arch).toEqual({ ...TINY_ARCH, ropeTheta: 10000, rmsNormEps: 1e-5 });
    expect(readMergedModelAsDense(rewritten(path, (t) => t, { architecture: JSON.stringify({ ...shapes, ropeTheta: 5e5, rmsNormEps: 1e-6 }) })).arch)
      .toMatchObject({ ropeTheta: 5e5, rmsNormEps: 1e-6 });
    expect(refusal(rewritten(path, (t) => t, { architecture: JSON.stringify({ ...shapes, ropeTheta: -3 }) }))).toBe("its metadata 'architecture' has ropeTheta -3, not a positive number");
  });

  it('names a tensor of the wrong size', () => {
    const path = mergedFile();
    const short = rewritten(path, (t) => (t.name === 'model.norm.weight' ? { ...t, shape: [3], data: Float32Array.of(1, 1, 1) } : t));
    expect(refusal(short)).toBe(`tensor model.norm.weight has 3 values, expected ${TINY_ARCH.dim}`);
    const packed = rewritten(path, (t) => (t.name === 'model.layers.1.self_attn.o_proj.qweight' ? { ...t, shape: [1], data: Int32Array.of(0) } : t));
    expect(refusal(packed)).toMatch(/^tensor model\.layers\.1\.self_attn\.o_proj\.qweight has 1 values, expected \d+$/);
  });
});
