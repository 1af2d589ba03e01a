// `qalc generate --backend cuda`: one token a step on the GPU (src/runtime/cuda/device-decode.ts),
// with a KV cache there sized for the generation, from
//   - a spec: its quantized model with its run's adapters (every decode linear adds the adapter's
//     term), or with --merged those adapters folded into the zeros in memory first;
//   - a merged model (`qalc merge`'s merged.safetensors, `qalc export --format qalc`): its codes,
//     scales and float zeros as stored, on the kernels of its plan without adapters
//     (src/plan/merged-plan.ts), x·Ŵ alone per linear.
// Refuses, as a BackendUnavailableError (one line, exit status 1), where the cuda backend cannot
// run (no GPU, no libcuda, an old GPU, no fatbins and no nvcc: cudaBackend says which) or cannot
// decode (no model-op kernels, or none for decode attention: an old compile folder).
import { BackendUnavailableError, chooseBackend } from '../../runtime/backend.ts';
import type { CudaBackend } from '../../runtime/cuda/backend.ts';
import { graphSettingOf, kvCacheShape, OpsDecoder, type DecodeGraphState } from '../../runtime/cuda/device-decode.ts';
import type { DeviceOps } from '../../runtime/cuda/device-ops.ts';
import type { MergedModel } from '../../export/merged-model.ts';
import { mergeModel } from '../../export/merged-model.ts';
import { mergedPlan } from '../../plan/merged-plan.ts';
import type { Plan } from '../../plan/plan.ts';
import type { Tokenizer } from '../../model/tokenizer.ts';
import type { QaLoraModel, TrainableCheckpoint } from '../../train/qalora-model.ts';
import { mergedQaLoraModel } from '../../train/merged-qalora-model.ts';
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

export interface CudaDecoderOptions {
  readonly kernelDir?: string;
  readonly randomWeights?: boolean;
  /** A spec: its run's adapters folded into the zeros (as `qalc merge` does), decoded as a merged model. */
  readonly merged?: boolean;
}

interface ModelToDecode {
  readonly model: QaLoraModel;
  readonly weights: TrainableCheckpoint;
  readonly tokenizer: Tokenizer;
  readonly description: string;
}

/** The decoder for `steps` forward passes (the KV cache's positions, capped at the context) of the model `build` makes on the backend's ops. */
async function cudaDecoder(plan: Plan, steps: number, kernelDir: string | undefined, build: (ops: DeviceOps) => ModelToDecode): Promise<CudaDecoder> {
  const backend = await chooseBackend('cuda', plan, kernelDir !== undefined ? { kernelDir } : {}) as CudaBackend;
  try {
    const { ops } = backend;
    // The linear-kernels-only mode (an old compile folder) keeps the other ops on the CPU: no device KV cache there.
    if (!isDeviceOps(ops)) throw new BackendUnavailableError('cuda', `generate needs every op on the GPU, and ${backend.notice.split('\n').at(-1)}`);
    const { model, weights, tokenizer, description } = build(ops);
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

/** A spec's model with its run's adapters (or, with `merged`, the run merged in memory). */
export async function cudaSpecDecoder(plan: Plan, specDir: string, checkpoint: string, steps: number, options: CudaDecoderOptions): Promise<CudaDecoder> {
  const modelOptions = options.randomWeights ? { randomWeights: true } : {};
  if (options.merged) {
    // Built and merged on the host (the codes stay there to be folded), then decoded as a merged model is.
    const spec = specQaLoraModelWithRun(plan, specDir, checkpoint, undefined, modelOptions);
    const merged = mergeModel(spec.model, spec.weights, plan.spec, { plan: JSON.stringify(plan) });
    return cudaMergedDecoder(merged, spec.tokenizer, `${spec.description}, MERGED in memory (the adapters folded into float zeros, as \`qalc merge\` writes them)`, steps, options.kernelDir);
  }
  return cudaDecoder(plan, steps, options.kernelDir, (ops) => specQaLoraModelWithRun(plan, specDir, checkpoint, ops, modelOptions));
}

/** A merged model (its plan's layers without adapters) on its codes, scales and float zeros. */
export async function cudaMergedDecoder(merged: MergedModel, tokenizer: Tokenizer, description: string, steps: number, kernelDir?: string): Promise<CudaDecoder> {
  if (merged.plan === undefined) throw new BackendUnavailableError('cuda', `${description} carries no plan (merged by an older qalc): merge it again to run it on --backend cuda`);
  const plan = mergedPlan(JSON.parse(merged.plan) as Plan);
  return cudaDecoder(plan, steps, kernelDir, (ops) => ({ ...mergedQaLoraModel(merged, ops), tokenizer, description }));
}
