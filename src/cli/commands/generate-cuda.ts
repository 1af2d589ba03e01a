// `qalc generate SPEC --backend cuda`: the spec's quantized model with its run's adapters, one
// token a step on the GPU (src/runtime/cuda/device-decode.ts), with a KV cache there sized for
// the generation. Refuses, as a BackendUnavailableError (one line, exit status 1), where the cuda
// backend cannot run (no GPU, no libcuda, an old GPU, no fatbins and no nvcc: cudaBackend says
// which) or cannot decode (no model-op kernels, or none for decode attention: an old compile folder).
import { BackendUnavailableError, chooseBackend } from '../../runtime/backend.ts';
import type { CudaBackend } from '../../runtime/cuda/backend.ts';
import { graphSettingOf, kvCacheShape, OpsDecoder, type DecodeGraphState } from '../../runtime/cuda/device-decode.ts';
import type { DeviceOps } from '../../runtime/cuda/device-ops.ts';
import type { Plan } from '../../plan/plan.ts';
import type { Tokenizer } from '../../model/tokenizer.ts';
import { specQaLoraModelWithRun } from '../../train/spec-model.ts';

export interface CudaDecoder {
  readonly decoder: OpsDecoder;
  readonly tokenizer: Tokenizer;
  readonly description: string;
  readonly notice: string;
  readonly report: () => string;
  readonly close: () => void;
}

/** The report's line on how the steps ran: replayed from a CUDA graph, or launched op by op. */
export function describeDecodeGraph(state: DecodeGraphState): string {
  return state.mode === 'graph'
    ? `decode step: a CUDA graph of ${state.nodes} device calls, captured at step ${state.capturedAt + 1} and replayed ${state.replays} times (QALC_CUDA_GRAPH=0 launches every op from the host instead)`
    : `decode step: every op launched from the host each token (no CUDA graph: ${state.why})`;
}

const isDeviceOps = (ops: CudaBackend['ops']): ops is DeviceOps => 'decodeSteps' in ops;

/** The decoder for `steps` forward passes (the KV cache's positions, capped at the context). */
export async function cudaSpecDecoder(plan: Plan, specDir: string, checkpoint: string, steps: number, options: { readonly kernelDir?: string; readonly randomWeights?: boolean }): Promise<CudaDecoder> {
  const backend = await chooseBackend('cuda', plan, options.kernelDir !== undefined ? { kernelDir: options.kernelDir } : {}) as CudaBackend;
  try {
    const { ops } = backend;
    // The linear-kernels-only mode (an old compile folder) keeps the other ops on the CPU: no device KV cache there.
    if (!isDeviceOps(ops)) throw new BackendUnavailableError('cuda', `generate needs every op on the GPU, and ${backend.notice.split('\n').at(-1)}`);
    const { model, weights, tokenizer, description } = specQaLoraModelWithRun(plan, specDir, checkpoint, ops, options.randomWeights ? { randomWeights: true } : {});
    const graph = graphSettingOf(process.env['QALC_CUDA_GRAPH']);
    let decodeSteps;
    try {
      decodeSteps = ops.decodeSteps(kvCacheShape(model.arch, Math.max(1, Math.min(steps, model.arch.context))), model.arch.ropeTheta);
    } catch (e) {
      if (e instanceof RangeError || !(e instanceof Error)) throw e;
      throw new BackendUnavailableError('cuda', e.message);
    }
    const decoder = new OpsDecoder(model, weights, ops, decodeSteps, { graph });
    return {
      decoder, tokenizer, description, notice: backend.notice,
      report: () => [backend.report(), describeDecodeGraph(decoder.graphState())].join('\n'),
      close: () => backend.close(),
    };
  } catch (e) {
    backend.close();
    throw e;
  }
}
