// The WebGPU backend as a TrainingOps table (src/runtime/ops.ts): every op of
// QaLoraModel computed by a WGSL kernel of ./ops/ (one file per kernel, the math in its header),
// with the TypeScript ops' signatures and conventions (forwards overwrite, backwards +=) — and,
// given a spec's compiled kernels, the quantized linear layers on those (compiled-linear.ts).
//
//   const gpu = await openWebGpu();
//   const model = new QaLoraModel(checkpoint, spec, { ops: webGpuOps(gpu.device, compiledWgslKernels(plan).kernels) });
//
// What an op writes stays on the device for the next ops (OpRunner): an op submits its work
// and returns without waiting, and the host sees the values only after syncToHost — which
// QaLoraModel calls for the logits after a forward and the gradients after a backward. The
// cross-entropy forward is the one op that waits, for the per-row losses. Frozen weights and
// pipelines are cached. Float32 only, like the native CPU backend. Host-side work is limited to
// checks that throw the TypeScript ops' errors, the dropout keep-scales, and the loss average.
import { poolingFactor } from '../../reference/adapter.ts';
import { attentionSavedLength, type AttentionShape } from '../typescript/attention.ts';
import { checkTargets, countsTowardLoss, type CrossEntropyResult } from '../typescript/cross-entropy.ts';
import { checkTokens } from '../typescript/embedding.ts';
import { checkLength, type Floats } from '../typescript/floats.ts';
import { inFeaturesOf, outFeaturesOf, type AdapterActivations, type QaLoraLinear } from '../typescript/qalora-linear.ts';
import { checkRopeShape, type RopeTables } from '../typescript/rope.ts';
import type { TrainingOps } from '../ops.ts';
import type { CompiledWgslKernel } from './compiled-kernels.ts';
import { compiledLinearOps, type CompiledLinearStats } from '../compiled-linear.ts';
import { webGpuPort } from './webgpu-port.ts';
import { keepScales } from '../kernel-buffers.ts';
import { f32 } from './host-arrays.ts';
import { OpRunner, type Job } from './op-runner.ts';
import { codesAlongInputs, codesAlongOutputs, paddedToWords } from './weight-layouts.ts';

/** Which rows count for the loss (countsTowardLoss of each). */
function countedRows(targets: ArrayLike<number>, mask: ArrayLike<number> | undefined, rows: number): boolean[] {
  return Array.from({ length: rows }, (_, row) => countsTowardLoss(targets, mask, row));
}

function checkLayer(layer: QaLoraLinear): void {
  const { base, adapter } = layer;
  if (adapter === null) return;
  const K = inFeaturesOf(base), N = outFeaturesOf(base);
  if (K % adapter.groupSize !== 0) throw new RangeError(`adapter group size ${adapter.groupSize} does not divide in_features ${K}`);
  if (base.kind === 'quantized' && base.weight.groupSize !== adapter.groupSize) {
    throw new RangeError(`adapter group size ${adapter.groupSize} differs from the quantization group size ${base.weight.groupSize}`);
  }
  checkLength('A', adapter.a, (K / adapter.groupSize) * adapter.rank);
  checkLength('B', adapter.b, adapter.rank * N);
}

interface FrozenBase {
  /** y = x·Ŵ + σ·v·B (rank 0: no adapter term). */
  forward(y: GPUBuffer, x: GPUBuffer, v: GPUBuffer, b: GPUBuffer, rank: number, scaling: number): void;
  /** dx += dy·Ŵᵀ + factor·keep·(dv·Aᵀ), unpooled over each group (rank 0: no adapter term). */
  backward(dx: GPUBuffer, dy: GPUBuffer, dv: GPUBuffer, a: GPUBuffer, keep: GPUBuffer, rank: number, factor: number): void;
}

/** The frozen base's dispatches into `job`, its buffers cached in each kernel's layout. */
function frozenBase(job: Job, layer: QaLoraLinear, rows: number): FrozenBase {
  const { base, adapter } = layer;
  if (base.kind === 'quantized') {
    const { q, scales, zeros, groupSize, inFeatures: K, outFeatures: N } = base.weight;
    const padded = paddedToWords(K / groupSize, N);
    return {
      forward: (y, x, v, b, rank, scaling) => job.dispatch('qalora_forward_quantized',
        [y, x, job.frozen(q, codesAlongOutputs(K, N)), job.frozen(scales, padded), job.frozen(zeros, padded), v, b],
        [rows, K, N, groupSize, rank, { f32: scaling }], Math.ceil(rows / 4) * Math.ceil(N / 4)),
      backward: (dx, dy, dv, a, keep, rank, factor) => {
        const groups = K / groupSize;
        const weighted = job.scratch(rows * groups * N), zeroTerm = job.scratch(rows * groups);
        job
          .dispatch('qalora_weighted_dy', [weighted, zeroTerm, dy, job.frozen(scales), job.frozen(zeros)], [rows, groups, N], rows * groups)
          .dispatch('qalora_backward_quantized', [dx, weighted, zeroTerm, job.frozen(q, codesAlongInputs(K, N)), dv, a, keep],
            [rows, K, N, groupSize, rank, { f32: factor }], Math.ceil(rows / 4) * Math.ceil(K / 4));
      },
    };
  }
  const { inFeatures: K, outFeatures: N } = base;
  const weight = job.frozen(f32(base.weight, 'the dense weight'));
  const adapterGroup = adapter?.groupSize ?? 1;
  return {
    forward: (y, x, v, b, rank, scaling) => job.dispatch('qalora_forward_dense', [y, x, weight, v, b], [rows, K, N, rank, { f32: scaling }], rows * N),
    backward: (dx, dy, dv, a, keep, rank, factor) =>
      job.dispatch('qalora_backward_dense', [dx, dy, weight, dv, a, keep], [rows, K, N, adapterGroup, rank, { f32: factor }], rows * K),
  };
}

function linearOps(runner: OpRunner): Pick<TrainingOps, 'qaloraLinearForward' | 'qaloraLinearBackward'> {
  return {
    async qaloraLinearForward(y, x, rows, layer, saved?: AdapterActivations) {
      checkLayer(layer);
      const { adapter } = layer;
      const K = inFeaturesOf(layer.base), N = outFeaturesOf(layer.base);
      checkLength('x', x, rows * K);
      checkLength('y', y, rows * N);
      const job = runner.job();
      const base = frozenBase(job, layer, rows);
      const xBuffer = job.input(f32(x, 'x'));
      if (adapter === null) {
        const none = job.scratch(1);
        base.forward(job.output(f32(y, 'y')), xBuffer, none, none, 0, 0);
        return job.run();
      }
      if (saved === undefined) throw new Error('a layer with an adapter needs activations to save');
      const { groupSize, rank, pooling, scaling, dropout } = adapter;
      const groups = K / groupSize;
      const u = job.output(f32(saved.u, 'u'));
      const v = job.output(f32(saved.v, 'v'));
      job
        .dispatch('qalora_pool', [u, xBuffer], [rows, K, groupSize, { f32: poolingFactor(pooling, groupSize) }], rows * groups)
        .dispatch('qalora_adapter_down', [v, u, job.input(keepScales(saved.mask, rows * groups, dropout)), job.input(f32(adapter.a, 'A'))], [rows, groups, rank], rows * rank);
      base.forward(job.output(f32(y, 'y')), xBuffer, v, job.input(f32(adapter.b, 'B')), rank, scaling);
      return job.run();
    },

    async qaloraLinearBackward(dx, dy, rows, layer, saved?: AdapterActivations) {
      checkLayer(layer);
      const { adapter } = layer;
      const K = inFeaturesOf(layer.base), N = outFeaturesOf(layer.base);
      checkLength('dx', dx, rows * K);
      checkLength('dy', dy, rows * N);
      const job = runner.job();
      const base = frozenBase(job, layer, rows);
      const dyBuffer = job.input(f32(dy, 'dy'));
      const dxBuffer = job.inout(f32(dx, 'dx'));
      if (adapter === null) {
        const none = job.scratch(1);
        base.backward(dxBuffer, dyBuffer, none, none, none, 0, 0);
        return job.run();
      }
      if (saved === undefined) throw new Error('a layer with an adapter needs the activations its forward saved');
      const { groupSize, rank, pooling, scaling, dropout } = adapter;
      const groups = K / groupSize;
      const dv = job.scratch(rows * rank);
      const u = job.input(f32(saved.u, 'u'));
      const keep = job.input(keepScales(saved.mask, rows * groups, dropout));
      const a = job.input(f32(adapter.a, 'A'));
      job.dispatch('qalora_adapter_dv', [dv, dyBuffer, job.input(f32(adapter.b, 'B'))], [rows, N, rank, { f32: scaling }], rows * rank);
      base.backward(dxBuffer, dyBuffer, dv, a, keep, rank, poolingFactor(pooling, groupSize));
      job
        .dispatch('qalora_grad_a', [job.inout(f32(adapter.gradA, 'dA')), u, keep, dv], [rows, groups, rank], groups * rank)
        .dispatch('qalora_grad_b', [job.inout(f32(adapter.gradB, 'dB')), job.input(f32(saved.v, 'v')), dyBuffer], [rows, N, rank, { f32: scaling }], rank * N);
      return job.run();
    },
  };
}

function attentionParams(shape: AttentionShape): number[] {
  if (shape.heads % shape.kvHeads !== 0) throw new RangeError(`heads ${shape.heads} is not a multiple of kv heads ${shape.kvHeads}`);
  return [shape.batch, shape.seqLen, shape.heads, shape.kvHeads, shape.headSize];
}

function rope(runner: OpRunner, direction: 1 | -1) {
  return (x: Floats, tables: RopeTables, batch: number, seqLen: number, width: number): Promise<void> => {
    checkRopeShape(tables, seqLen, width);
    const job = runner.job();
    const rows = batch * seqLen;
    job.dispatch('rope', [job.inout(f32(x, 'x')), job.frozen(tables.cos), job.frozen(tables.sin)], [rows, seqLen, width, tables.headSize, { f32: direction }], rows * (width / 2));
    return job.run();
  };
}

export interface WebGpuOps extends TrainingOps {
  /** With compiled kernels: how many linear calls ran on them, and why others did not. */
  readonly linearStats: CompiledLinearStats | undefined;
}

/**
 * The TrainingOps of the WebGPU backend on `device`. With `compiled` (a spec's compiled WGSL
 * kernels, compiled-kernels.ts), the quantized linear layers run on those; without, on the op
 * kernels of ./ops/ like every other op.
 */
export function webGpuOps(device: GPUDevice, compiled?: readonly CompiledWgslKernel[]): WebGpuOps {
  const runner = new OpRunner(device);
  const opKernelLinear = linearOps(runner);
  const compiledLinear = compiled === undefined ? undefined : compiledLinearOps(webGpuPort(runner, compiled), opKernelLinear);
  return {
    name: compiledLinear === undefined ? 'webgpu' : 'webgpu+compiled',
    linearStats: compiledLinear?.stats,

    async embeddingForward(out, tokens, table, count, channels) {
      checkLength('embedding output', out, count * channels);
      checkTokens(tokens, count, table.length / channels);
      const ids = Uint32Array.from({ length: count }, (_, n) => tokens[n]!);
      const job = runner.job();
      job.dispatch('embedding', [job.output(f32(out, 'out')), job.input(ids), job.frozen(f32(table, 'table'))], [count, channels], count * channels);
      return job.run();
    },

    async rmsnormForward(out, rstd, x, weight, rows, channels, eps) {
      const job = runner.job();
      job.dispatch('rmsnorm_forward', [job.output(f32(out, 'out')), job.output(f32(rstd, 'rstd')), job.input(f32(x, 'x')), job.frozen(f32(weight, 'weight'))], [rows, channels, { f32: eps }], rows);
      return job.run();
    },

    async rmsnormBackward(dx, dy, x, weight, rstd, rows, channels) {
      const job = runner.job();
      job.dispatch('rmsnorm_backward', [job.inout(f32(dx, 'dx')), job.input(f32(dy, 'dy')), job.input(f32(x, 'x')), job.frozen(f32(weight, 'weight')), job.input(f32(rstd, 'rstd'))], [rows, channels], rows);
      return job.run();
    },

    qaloraLinearForward: compiledLinear?.qaloraLinearForward ?? opKernelLinear.qaloraLinearForward,
    qaloraLinearBackward: compiledLinear?.qaloraLinearBackward ?? opKernelLinear.qaloraLinearBackward,
    ropeForward: rope(runner, 1),
    ropeBackward: rope(runner, -1),

    async attentionForward(out, probs, q, k, v, shape) {
      const params = attentionParams(shape);
      const job = runner.job();
      job.dispatch('attention_forward', [job.output(f32(out, 'out')), job.output(f32(probs, 'probs')), job.input(f32(q, 'q')), job.input(f32(k, 'k')), job.input(f32(v, 'v'))],
        [...params, { f32: 1 / Math.sqrt(shape.headSize) }], shape.batch * shape.heads * shape.seqLen);
      return job.run();
    },

    attentionSavedLength,

    async attentionBackward(dq, dk, dv, dOut, q, k, v, _out, probs, shape) {
      const params = attentionParams(shape);
      const { batch, seqLen, heads, kvHeads, headSize } = shape;
      const job = runner.job();
      const dScores = job.scratch(batch * heads * seqLen * seqLen);
      const dOutBuffer = job.input(f32(dOut, 'dOut'));
      const probsBuffer = job.input(f32(probs, 'probs'));
      job
        .dispatch('attention_backward_query', [job.inout(f32(dq, 'dq')), dScores, dOutBuffer, job.input(f32(k, 'k')), job.input(f32(v, 'v')), probsBuffer],
          [...params, { f32: 1 / Math.sqrt(headSize) }], batch * heads * seqLen)
        .dispatch('attention_backward_key', [job.inout(f32(dk, 'dk')), job.inout(f32(dv, 'dv')), dScores, dOutBuffer, job.input(f32(q, 'q')), probsBuffer],
          params, batch * seqLen * kvHeads * headSize);
      return job.run();
    },

    async swigluForward(out, gate, up, count) {
      const job = runner.job();
      job.dispatch('swiglu_forward', [job.output(f32(out, 'out')), job.input(f32(gate, 'gate')), job.input(f32(up, 'up'))], [count], count);
      return job.run();
    },

    async swigluBackward(dGate, dUp, dOut, gate, up, count) {
      const job = runner.job();
      job.dispatch('swiglu_backward', [job.inout(f32(dGate, 'dGate')), job.inout(f32(dUp, 'dUp')), job.input(f32(dOut, 'dOut')), job.input(f32(gate, 'gate')), job.input(f32(up, 'up'))], [count], count);
      return job.run();
    },

    async lmHeadForward(logits, x, classifier, rows, channels, vocab) {
      const job = runner.job();
      job.dispatch('lm_head_forward', [job.output(f32(logits, 'logits')), job.input(f32(x, 'x')), job.frozen(f32(classifier, 'classifier'))], [rows, channels, vocab], rows * vocab);
      return job.run();
    },

    async lmHeadBackward(dx, dLogits, classifier, rows, channels, vocab) {
      const job = runner.job();
      job.dispatch('lm_head_backward', [job.inout(f32(dx, 'dx')), job.input(f32(dLogits, 'dLogits')), job.frozen(f32(classifier, 'classifier'))], [rows, channels, vocab], rows * channels);
      return job.run();
    },

    async crossEntropyForward(probs, logits, targets, mask, rows, vocab): Promise<CrossEntropyResult> {
      checkTargets(targets, mask, rows, vocab);
      const counted = countedRows(targets, mask, rows);
      const rowLoss = new Float32Array(rows);
      const job = runner.job();
      job.dispatch('cross_entropy_forward', [job.output(f32(probs, 'probs')), job.output(rowLoss), job.input(f32(logits, 'logits')), job.input(Int32Array.from(targets))], [rows, vocab], rows);
      await job.run();
      await runner.syncToHost([rowLoss]);
      let total = 0, n = 0;
      counted.forEach((counts, row) => {
        if (counts) { total += rowLoss[row]; n++; }
      });
      return { loss: n === 0 ? NaN : total / n, counted: n };
    },

    async crossEntropyBackward(dLogits, probs, targets, mask, rows, vocab, dLoss = 1) {
      const counted = countedRows(targets, mask, rows);
      const n = counted.filter(Boolean).length;
      if (n === 0) return;
      const rowScale = Float32Array.from(counted, (counts) => (counts ? dLoss / n : 0));
      const job = runner.job();
      job.dispatch('cross_entropy_backward', [job.inout(f32(dLogits, 'dLogits')), job.input(f32(probs, 'probs')), job.input(rowScale), job.input(Int32Array.from(targets))], [rows, vocab], rows * vocab);
      return job.run();
    },

    async residualAdd(out, a, b, count) {
      const job = runner.job();
      job.dispatch('residual_add', [job.output(f32(out, 'out')), job.input(f32(a, 'a')), job.input(f32(b, 'b'))], [count], count);
      return job.run();
    },

    zeroFill: (x) => runner.zero(f32(x, 'x')),
    syncToHost: (arrays) => runner.syncToHost(arrays.map((array) => f32(array, 'a synced array'))),
  };
}
