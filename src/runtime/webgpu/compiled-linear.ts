// The QA-LoRA linear layers of the webgpu backend on the spec's compiled WGSL kernels — the
// kernels `qalc compile` emits and the kernel suite checks against float64 — with the other
// training ops on the runtime's op kernels. Per call, in one submit:
//   forward   the forward kernel (the decode kernel when T is within its range) writes
//             y, u = pool(x) and v = drop(u)·A straight into the caller's arrays
//   backward  adapter_grad (dv and dB, then du and dA) → backward_data (dx = dy·Ŵᵀ + unpool(du))
//             → accumulate: the kernels overwrite, the training ops add into dx, dA and dB
// Everything stays on the device between ops, as with the op kernels (op-runner.ts). The frozen
// weight is uploaded once in the kernels' layout (GPTQ v1 qweight, scales then zeros); A and B
// are packed and uploaded with each call.
//
// Kernels are chosen by what they compute (../linear-kernel-choice.ts). A layer no compiled
// kernel fits — a dense control layer, or a shape the spec does not have — runs on the op
// kernels, and `stats` says which and why.
import type { QuantizedWeight } from '../../quant/quantized-weight.ts';
import { checkLength } from '../typescript/floats.ts';
import type { AdapterActivations, QaLoraLinear } from '../typescript/qalora-linear.ts';
import type { TrainingOps } from '../ops.ts';
import { keepScales, kernelQweight, packAdapterWeights, packScalesAndZeros } from '../kernel-buffers.ts';
import { bindingNamed, elementsFor, hasBinding, launchesFor } from '../../backends/manifest.ts';
import { chooseLinearKernels, type LinearKernels } from '../linear-kernel-choice.ts';
import type { CompiledWgslKernel } from './compiled-kernels.ts';
import { f32 } from './host-arrays.ts';
import type { FrozenLayout, Job, OpRunner } from './op-runner.ts';

type LinearOps = Pick<TrainingOps, 'qaloraLinearForward' | 'qaloraLinearBackward'>;

export interface CompiledLinearStats {
  compiledForward: number;
  compiledBackward: number;
  opKernelForward: number;
  opKernelBackward: number;
  /** Why a layer ran on the op kernels, one line each. */
  readonly fallbacks: Set<string>;
}

/** One line: what ran where. */
export function describeCompiledLinearStats(stats: CompiledLinearStats): string {
  const line = `webgpu: quantized linear layers on the compiled kernels: ${stats.compiledForward} forward and ${stats.compiledBackward} backward calls; ` +
    `on the op kernels: ${stats.opKernelForward} forward, ${stats.opKernelBackward} backward`;
  return stats.fallbacks.size === 0 ? line : `${line} (${[...stats.fallbacks].join('; ')})`;
}

function elementsOf(kernel: CompiledWgslKernel, binding: string): number {
  const found = bindingNamed(kernel.manifest, binding);
  if (found.shape.some((size) => size.tokens !== 0)) throw new Error(`kernel ${kernel.manifest.kernel}: ${binding} depends on T`);
  return elementsFor(found, 0);
}

/** The codes as the kernel's qweight (its word rows: ⌈K·b/32⌉, or more for a padded K). */
function qweightLayout(kernel: CompiledWgslKernel, weight: QuantizedWeight): FrozenLayout {
  const wordRows = elementsOf(kernel, 'qweight') / weight.outFeatures;
  return { name: `qweight, ${wordRows} word rows`, build: () => kernelQweight(weight, wordRows) };
}

/** The scales then the zeros, as groupScalesAndZeros. */
function scalesAndZerosLayout(kernel: CompiledWgslKernel, weight: QuantizedWeight): FrozenLayout {
  const expected = elementsOf(kernel, 'groupScalesAndZeros');
  return {
    name: 'scales then zeros',
    build: () => {
      const packed = packScalesAndZeros(weight);
      if (packed.length !== expected) throw new Error(`kernel ${kernel.manifest.kernel}: groupScalesAndZeros holds ${expected} floats, the layer ${packed.length}`);
      return packed;
    },
  };
}

function frozenBuffers(job: Job, kernel: CompiledWgslKernel, weight: QuantizedWeight): Record<string, GPUBuffer> {
  return {
    qweight: job.frozen(weight.q, qweightLayout(kernel, weight)),
    groupScalesAndZeros: job.frozen(weight.scales, scalesAndZerosLayout(kernel, weight)),
  };
}

export function compiledLinearOps(runner: OpRunner, kernels: readonly CompiledWgslKernel[], fallback: LinearOps): LinearOps & { readonly stats: CompiledLinearStats } {
  const stats: CompiledLinearStats = { compiledForward: 0, compiledBackward: 0, opKernelForward: 0, opKernelBackward: 0, fallbacks: new Set() };
  const chosen = new WeakMap<QaLoraLinear, LinearKernels<CompiledWgslKernel> | string>();
  const kernelsOf = (layer: QaLoraLinear) => {
    let found = chosen.get(layer);
    if (found === undefined) {
      found = chooseLinearKernels(kernels, (k) => k.manifest, layer);
      chosen.set(layer, found);
    }
    return found;
  };

  return {
    stats,

    async qaloraLinearForward(y, x, rows, layer, saved?: AdapterActivations) {
      const found = kernelsOf(layer);
      if (typeof found === 'string') {
        stats.fallbacks.add(found);
        stats.opKernelForward++;
        return fallback.qaloraLinearForward(y, x, rows, layer, saved);
      }
      const { adapter } = layer;
      const weight = (layer.base as { readonly weight: QuantizedWeight }).weight;
      checkLength('x', x, rows * weight.inFeatures);
      checkLength('y', y, rows * weight.outFeatures);
      const { decode } = found;
      const kernel = decode !== undefined && launchesFor(decode.manifest, rows) !== undefined ? decode : found.forward;
      const job = runner.job();
      const buffers: Record<string, GPUBuffer> = { input: job.input(f32(x, 'x')), ...frozenBuffers(job, kernel, weight), output: job.output(f32(y, 'y')) };
      if (adapter !== null) {
        if (saved === undefined) throw new Error('a layer with an adapter needs activations to save');
        const groups = weight.inFeatures / adapter.groupSize;
        checkLength('A', adapter.a, groups * adapter.rank);
        checkLength('B', adapter.b, adapter.rank * weight.outFeatures);
        buffers.adapterWeights = job.input(packAdapterWeights(adapter.a, adapter.b));
        buffers.pooledInput = job.output(f32(saved.u, 'u'));
        buffers.adapterActivation = job.output(f32(saved.v, 'v'));
        if (hasBinding(kernel.manifest, 'dropoutMultiplier')) buffers.dropoutMultiplier = job.input(keepScales(saved.mask, rows * groups, adapter.dropout));
      }
      job.dispatchCompiled(kernel, rows, buffers, { tokens: rows, adapterScale: adapter?.scaling ?? 0 });
      stats.compiledForward++;
      return job.run();
    },

    async qaloraLinearBackward(dx, dy, rows, layer, saved?: AdapterActivations) {
      const found = kernelsOf(layer);
      if (typeof found === 'string') {
        stats.fallbacks.add(found);
        stats.opKernelBackward++;
        return fallback.qaloraLinearBackward(dx, dy, rows, layer, saved);
      }
      const { adapter } = layer;
      const weight = (layer.base as { readonly weight: QuantizedWeight }).weight;
      const K = weight.inFeatures, N = weight.outFeatures;
      checkLength('dx', dx, rows * K);
      checkLength('dy', dy, rows * N);
      const job = runner.job();
      const outputGrad = job.input(f32(dy, 'dy'));
      const inputGrad = job.scratch(rows * K);
      const backwardData: Record<string, GPUBuffer> = { outputGrad, ...frozenBuffers(job, found.backwardData, weight), inputGrad };
      let weightGrads: GPUBuffer | undefined;
      if (adapter !== null && found.adapterGrad !== undefined) {
        if (saved === undefined) throw new Error('a layer with an adapter needs the activations its forward saved');
        const groups = K / adapter.groupSize;
        weightGrads = job.scratch(adapter.a.length + adapter.b.length);
        backwardData.pooledInputGrad = job.scratch(rows * groups);
        const adapterGrad: Record<string, GPUBuffer> = {
          outputGrad,
          pooledInput: job.input(f32(saved.u, 'u')),
          adapterActivation: job.input(f32(saved.v, 'v')),
          adapterWeights: job.input(packAdapterWeights(adapter.a, adapter.b)),
          adapterActivationGrad: job.scratch(rows * adapter.rank),
          pooledInputGrad: backwardData.pooledInputGrad,
          adapterWeightGrads: weightGrads,
        };
        if (hasBinding(found.adapterGrad.manifest, 'dropoutMultiplier')) adapterGrad.dropoutMultiplier = job.input(keepScales(saved.mask, rows * groups, adapter.dropout));
        job.dispatchCompiled(found.adapterGrad, rows, adapterGrad, { tokens: rows, adapterScale: adapter.scaling });
      }
      job
        .dispatchCompiled(found.backwardData, rows, backwardData, { tokens: rows })
        .dispatch('accumulate', [job.inout(f32(dx, 'dx')), inputGrad], [rows * K, 0], rows * K);
      if (adapter !== null && weightGrads !== undefined) {
        const { a, b } = adapter;
        job
          .dispatch('accumulate', [job.inout(f32(adapter.gradA, 'dA')), weightGrads], [a.length, 0], a.length)
          .dispatch('accumulate', [job.inout(f32(adapter.gradB, 'dB')), weightGrads], [b.length, a.length], b.length);
      }
      stats.compiledBackward++;
      return job.run();
    },
  };
}
