// The cuda backend as a TrainingOps table with every op on the GPU: the QA-LoRA linear layers
// on the spec's compiled linear kernels (through the resident port and the one compiled-linear
// layer), and embedding, RMSNorm, RoPE, attention, SwiGLU, the residual glue, lm_head and
// cross-entropy on the spec's model-op kernels (src/backends/cuda/model-ops.ts, emitted by
// `qalc compile` with the model's shapes baked in). Data stays on the device between ops
// (device-arrays.ts): a step uploads its token ids and targets (the dropout multipliers are
// computed on the device from each layer's draws, several layers' a launch: device-dropout.ts, dropout-window.ts; the adapters, their
// gradients and AdamW's moments stay in the device optimizer's packed storage:
// packed-parameters.ts), and hands back only what the model syncs (the logits after a forward,
// the gradients after a backward) and the loss. Semantics are the TypeScript ops' (forwards overwrite, backwards +=);
// the host checks what the TypeScript ops check (token ids, targets, shapes) before launching.
//
// lm_head and the cross-entropy also run fused, by chunks of rows (lmHeadCrossEntropy, where
// cuBLAS is there): the [rows, vocab] logits, their softmax and their gradient never exist whole
// (at the 7B shape 262 MB each, the biggest arrays of a step), only one chunk's logits.
//
// The quantized linear layers at training sizes dequantize Ŵ once and multiply on cuBLAS
// (gemm-linear.ts), smaller calls keep the fused kernels; QALC_CUDA_LINEAR=fused|gemm|auto
// forces either path (auto by default). There the adapter's product is r more reduction steps of
// the base GEMM (QALC_CUDA_ADAPTER_GEMM=stacked, the default) or a GEMM of its own (separate).
//
// RMSNorm, SwiGLU, the residual add and RoPE bind their activations at a linear layer in the
// linear kernels' 16-bit layout (activation-boundary.ts), so no conversion runs between them.
//
// A gradient the model zero-fills before the ops that add into it is known zero instead
// (DeviceArrays.zeroLater: no launch), and its first writer overwrites it: RMSNorm's
// backwardOverwrite, SwiGLU's backwardToActivation (dGate, dUp straight into the 16-bit rows the
// gate and up linears read), lm_head's dx GEMM and the linear layers' dx, dA, dB GEMMs with
// beta = 0, unpool's overwrite (gemm-linear.ts), a convert instead of an accumulate (the fused
// linear path). RoPE's backward writes dq and dk in the q and k linears' 16-bit rows
// (backwardToActivation) where those read them so. Attention still adds dq, dk, dv into filled
// zeros. QALC_CUDA_EAGER_ZERO=1 fills at once and overwrites nothing (the path before).
//
// An op the compiled kernels cannot serve (a linear layer with no kernel of its shape) runs on
// the host ops after the arrays it touches are synced back, counted in the report line.
import type { ModelOpManifestKernel } from '../../backends/manifest.ts';
import type { ModelOp } from '../../backends/cuda/model-ops.ts';
import { RMSNORM_FEW_ROWS } from '../../backends/cuda/model-ops/rmsnorm.ts';
import { compiledLinearOps, describeCompiledLinearStats, type LinearOps } from '../compiled-linear.ts';
import type { SyncTrainingOps, TrainingOps } from '../ops.ts';
import { attentionSavedLength as probabilitiesLength, type AttentionShape } from '../typescript/attention.ts';
import { checkTargets, countsTowardLoss, type CrossEntropyResult } from '../typescript/cross-entropy.ts';
import type { lmHeadCrossEntropy } from '../typescript/lm-head-cross-entropy.ts';
import { checkTokens } from '../typescript/embedding.ts';
import { checkRopeShape, type RopeTables } from '../typescript/rope.ts';
import { checkLength, type Floats } from '../typescript/floats.ts';
import type { CudaDevicePort, DeviceBuffer, DeviceMatrix } from './cuda.ts';
import { CUDA_WORDING } from './cuda-port.ts';
import { dense, DeviceArrays, float32, type Converter, type Layout } from './device-arrays.ts';
import type { CudaKernelSet } from './kernels.ts';
import { bytesPerElement, encodeRows, type ActivationType } from './host-data.ts';
import { activationBoundary } from './activation-boundary.ts';
import { modelOpLauncher, type ModelOpLauncher } from './model-op-launcher.ts';
import { residentPort } from './resident-port.ts';
import { DeviceAdamW } from './device-adamw.ts';
import { deviceDropout } from './device-dropout.ts';
import { dropoutSeedWord } from './dropout-seed.ts';
import { dropoutWindow } from './dropout-window.ts';
import { deviceUnpool } from './device-unpool.ts';
import { deviceDecodeSteps } from './device-decode-steps.ts';
import type { DecodeSteps } from './device-decode.ts';
import type { DecodeAttentionShape } from '../typescript/decode-attention.ts';
import { deviceFrozenQuantizer, quantizePathOf, withFrozenQuantizer, type QuantizePath } from './device-quantize.ts';
import { adapterGemmOf, describeLinearPaths, gemmLinearOps, linearPathOf, type GemmLinearOptions, type GemmLinearStats } from './gemm-linear.ts';
import { deviceStacking } from './device-stacking.ts';

export interface DeviceOps extends TrainingOps {
  readonly stats: GemmLinearStats;
  /** Kernel launches so far, linear and model ops, cuBLAS calls counted one each. */
  readonly launches: () => number;
  /** Values an op rounded to 16 bits for readers that then read them otherwise (device-arrays.ts): 0 unless the model's readers change between steps. */
  readonly earlyRoundings: () => number;
  /** A KV cache on the device and the ops of a decode step that read its token and position, for generation (device-decode.ts). */
  readonly decodeSteps: (shape: DecodeAttentionShape, ropeTheta: number) => DecodeSteps;
}

/**
 * Re-encoding on the device by the convert kernels (the spec's one 16-bit activation type) and the
 * residual accumulate; 16-bit rows into 16-bit rows of another stride go through a float32
 * temporary from `take` (attention's flat bf16 out for a linear whose binding pads its rows).
 */
function convertKernels(ops: ModelOpLauncher, activation: string, take: (bytes: number) => DeviceBuffer): Converter {
  const check16 = (layout: Layout) => {
    if (layout.encoding !== activation) throw new Error(`the convert kernels are ${activation}, a binding holds ${layout.encoding}`);
  };
  const toF32 = (to: DeviceBuffer, from: DeviceBuffer, layout: Layout) => {
    check16(layout);
    ops.launch('convert', 'fromActivation', { out: to, source: from, rows: layout.rows, columns: layout.width, stride: layout.stride, offset: 0 });
  };
  const isDenseF32 = (layout: Layout) => layout.encoding === 'f32' && layout.stride === layout.width;
  return {
    convert(to, toLayout, from, fromLayout, count) {
      if (isDenseF32(fromLayout) && toLayout.encoding !== 'f32') {
        check16(toLayout);
        if (count !== toLayout.rows * toLayout.width) throw new Error(`converting ${count} values into ${toLayout.rows}×${toLayout.width}`);
        ops.launch('convert', 'toActivation', { out: to, source: from, rows: toLayout.rows, columns: toLayout.width, stride: toLayout.stride });
      } else if (isDenseF32(toLayout) && fromLayout.encoding !== 'f32') {
        if (count !== fromLayout.rows * fromLayout.width) throw new Error(`converting ${fromLayout.rows}×${fromLayout.width} values into ${count}`);
        toF32(to, from, fromLayout);
      } else if (fromLayout.encoding !== 'f32' && toLayout.encoding !== 'f32') {
        check16(toLayout);
        if (count !== fromLayout.rows * fromLayout.width || count !== toLayout.rows * toLayout.width) throw new Error(`converting ${fromLayout.rows}×${fromLayout.width} values into ${toLayout.rows}×${toLayout.width}`);
        const widened = take(count * 4);
        toF32(widened, from, fromLayout);
        ops.launch('convert', 'toActivation', { out: to, source: widened, rows: toLayout.rows, columns: toLayout.width, stride: toLayout.stride });
      } else {
        throw new Error(`no device conversion from ${fromLayout.encoding} rows of ${fromLayout.stride} to ${toLayout.encoding} rows of ${toLayout.stride}`);
      }
    },
    accumulate(to, count, from, fromLayout, offset, overwrite = false) {
      if (isDenseF32(fromLayout)) {
        if (overwrite) to.copyFrom(from.view(offset * 4, count * 4), count * 4);
        else ops.launch('residual', 'accumulate', { out: to, source: from, offset, count });
        return;
      }
      check16(fromLayout);
      if (count !== fromLayout.rows * fromLayout.width) throw new Error(`accumulating ${fromLayout.rows}×${fromLayout.width} values into ${count}`);
      const args = { out: to, source: from, rows: fromLayout.rows, columns: fromLayout.width, stride: fromLayout.stride, offset };
      ops.launch('convert', overwrite ? 'fromActivation' : 'accumulateFromActivation', args);
    },
  };
}

function requireConstant(kernel: ModelOpManifestKernel, name: string, value: number, what: string): void {
  if (kernel.constants[name] !== value) throw new RangeError(`${kernel.kernel} was compiled for ${name} = ${kernel.constants[name]}, the call has ${what} ${value}`);
}

/**
 * The fused lm_head's chunk: the rows whose float32 logits fit in this many bytes (a multiple of
 * 128 rows where that fits; at vocab 32000, 512 rows, 65.5 MB, whose bf16 gradient is 32.8 MB more).
 * Chunks that large keep cuBLAS at the full GEMM's rate (m = 512 of n = 32000, k = 4096).
 */
export const LM_HEAD_CHUNK_BYTES = 64 * 2 ** 20;

/** Rows per chunk of the fused lm_head for `vocab`, within `bytes` of float32 logits. */
export function lmHeadChunkRows(vocab: number, bytes = LM_HEAD_CHUNK_BYTES): number {
  const fit = Math.max(1, Math.floor(bytes / (vocab * 4)));
  return fit >= 128 ? fit - (fit % 128) : fit;
}

export interface DeviceOpsOptions extends GemmLinearOptions {
  /** The fused lm_head's chunk (LM_HEAD_CHUNK_BYTES by default; tests make it small to have several). */
  readonly lmHeadChunkBytes?: number;
  /** Where the frozen weights are quantized (QALC_CUDA_QUANTIZE by default: device-quantize.ts). */
  readonly quantize?: QuantizePath;
  /** zeroFill fills at once and every gradient op adds into the zeros (DeviceArrays' eagerZeros): the path before known zeros, to compare. */
  readonly eagerZeros?: boolean;
  /** Where a forward gathers the embedding rows (QALC_CUDA_EMBEDDING by default: embeddingPlaceOf). */
  readonly embedding?: EmbeddingPlace;
}

/**
 * `device`: the gather kernel reads the table from device memory (250 MiB in bf16 at the 7B
 * shape). `host`: the host gathers the batch's rows of its 16-bit copy of the table and uploads
 * them (T × dim values, 16 MiB a step at the 7B shape), widened on the device by the convert
 * kernel — the same float32 values; the frozen table has no backward, so the device never holds it
 * (unless lm_head shares it, tied).
 */
export type EmbeddingPlace = 'device' | 'host';

/** QALC_CUDA_EMBEDDING: host, or device (the default, also when unset). */
export function embeddingPlaceOf(value: string | undefined): EmbeddingPlace {
  if (value === undefined || value === '' || value === 'device') return 'device';
  if (value === 'host') return 'host';
  throw new Error(`QALC_CUDA_EMBEDDING=${value}: host gathers the embedding rows on the host and uploads them, device (the default) keeps the table on the device`);
}

/**
 * The linear layers' path as QALC_CUDA_LINEAR says (auto when unset), their adapter GEMM as
 * QALC_CUDA_ADAPTER_GEMM does (stacked when unset), and QALC_CUDA_EAGER_ZERO=1's eager zeros.
 */
export const linearOptionsFromEnvironment = (): DeviceOpsOptions => ({
  path: linearPathOf(process.env['QALC_CUDA_LINEAR']), adapterGemm: adapterGemmOf(process.env['QALC_CUDA_ADAPTER_GEMM']),
  eagerZeros: eagerZerosOf(process.env['QALC_CUDA_EAGER_ZERO']), embedding: embeddingPlaceOf(process.env['QALC_CUDA_EMBEDDING']),
});

/** QALC_CUDA_EAGER_ZERO: 1 eager, 0 or unset known zeros; any other value is refused. */
export function eagerZerosOf(value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '0') return false;
  if (value === '1') return true;
  throw new Error(`QALC_CUDA_EAGER_ZERO=${value}: 1 fills zeroed gradients at once, 0 (the default) leaves them to their first writer`);
}

export function deviceOps(
  driver: CudaDevicePort, kernels: Pick<CudaKernelSet, 'kernels' | 'modelOps'> & Partial<Pick<CudaKernelSet, 'quantize'>>, host: SyncTrainingOps, activation: string,
  linearOptions: DeviceOpsOptions = linearOptionsFromEnvironment(),
): DeviceOps {
  const ops = modelOpLauncher(driver, kernels.modelOps);
  const arrays: DeviceArrays = new DeviceArrays(driver, convertKernels(ops, activation, (bytes) => arrays.take(bytes)), linearOptions.eagerZeros ?? false);
  const boundary = activationBoundary(arrays, ops, activation as ActivationType);
  // One seed word for the dropout op and unpool's entries (dropout-seed.ts).
  const seedWord = dropoutSeedWord((bytes) => arrays.allocate(bytes));
  const generator = deviceDropout(ops, seedWord);
  const port = residentPort(driver, kernels.kernels, arrays, generator && dropoutWindow(generator, (bytes) => arrays.allocate(bytes)));
  const kernelOf = ops.kernel;
  const read = (host: Floats, name: string, length = host.length) => arrays.read(float32(host, name), dense(length));
  const write = (host: Floats, name: string, length = host.length) => arrays.write(float32(host, name), dense(length));
  const update = (host: Floats, name: string) => arrays.update(float32(host, name));
  const frozen = (host: Floats, name: string) => arrays.frozen(float32(host, name), 'f32', () => host);
  /** Whether an op that writes all `count` values of `host` may overwrite it where it would add (known zeros), with `entry` where one is named. */
  const overwriting = (host: Float32Array, count: number, op?: ModelOp, entry?: string) =>
    count === host.length && arrays.overwritable(host) && (op === undefined || ops.hasEntry(op, entry!));
  /** Small host values for this op only: token ids, targets, a mask. */
  const upload = (values: ArrayBufferView) => {
    const buffer = arrays.take(values.byteLength);
    buffer.upload(values);
    return buffer;
  };
  /** A loss mask as the cross-entropy kernels read it (uint8, or a null pointer: every row counts). */
  const maskOf = (mask: ArrayLike<number> | undefined, rows: number) => {
    if (mask === undefined) return null;
    const bytes = new Uint8Array(rows);
    for (let r = 0; r < rows; r++) bytes[r] = mask[r] ? 1 : 0;
    return upload(bytes);
  };
  const lossBuffers = new WeakMap<Floats, DeviceBuffer>();

  // lm_head on cuBLAS when the port has it (the frozen classifier is a dense unquantized matrix,
  // the biggest matmul of a step: 2·rows·4096·32000 flops each way for LLaMA-7B), else on the
  // model-op kernel. Operands in bf16 when the activations are bf16 — what PyTorch's bf16 model
  // does (bf16 in, f32 accumulation), on the tensor cores (~20× the f32 SIMT kernel's rate on the
  // H200), with half the classifier's memory; the logits and dx stay f32. The classifier goes
  // up once as a bf16 copy; x and dLogits are converted on the device (the convert kernels).
  // With f16 activations the operands stay f32 (cuBLAS's f32 GEMM): dLogits, a probability over
  // the counted rows (≈ 1/(32000·rows)), is below f16's smallest subnormal.
  const gemm = driver.gemm;
  const gemmType: 'bf16' | 'f32' = activation === 'bf16' ? 'bf16' : 'f32';
  const lmHeadOperand = (host: Floats, rows: number, columns: number): DeviceMatrix => {
    const layout = gemmType === 'f32' ? dense(rows * columns) : { encoding: gemmType, rows, width: columns, stride: columns };
    return { buffer: arrays.read(float32(host, 'an lm_head operand'), layout), type: gemmType, rows, columns };
  };
  const lmHeadClassifier = (classifier: Floats, vocab: number, channels: number): DeviceMatrix => {
    const values = float32(classifier, 'classifier');
    const buffer = gemmType === 'f32' ? frozen(classifier, 'classifier') : arrays.frozen(values, gemmType, () => encodeRows(values, dense(vocab * channels, gemmType)));
    return { buffer, type: gemmType, rows: vocab, columns: channels };
  };
  /** The embedding table as the gather reads it: in the activation type where the kernel has that entry (as the bf16 model holds it), else float32. */
  const embeddingFromActivation = activation !== 'f32' && ops.hasEntry('embedding', 'forwardFromActivationTable');
  const embeddingTable = (table: Floats, vocab: number, channels: number): DeviceBuffer => {
    if (!embeddingFromActivation) return frozen(table, 'table');
    const values = float32(table, 'table');
    // The same key as lmHeadClassifier's: a tied classifier shares this copy.
    return arrays.frozen(values, activation, () => encodeRows(values, dense(vocab * channels, activation as ActivationType)));
  };
  /** The table's rows in the activation type on the host, encoded once (embedding = host). */
  const hostTables = new WeakMap<Float32Array, Uint8Array>();
  const gatheredOnHost = linearOptions.embedding === 'host' && embeddingFromActivation;
  /** The tokens' rows of the 16-bit table, gathered on the host into `out` on the device (float32). */
  const gatherOnHost = (out: Floats, ids: Int32Array, table: Floats, count: number, channels: number) => {
    const values = float32(table, 'table');
    let encoded = hostTables.get(values);
    if (encoded === undefined) hostTables.set(values, (encoded = encodeRows(values, dense(values.length, activation as ActivationType)) as Uint8Array));
    const rowBytes = channels * bytesPerElement(activation as ActivationType);
    const rows = new Uint8Array(count * rowBytes);
    for (let n = 0; n < count; n++) rows.set(encoded.subarray(ids[n]! * rowBytes, (ids[n]! + 1) * rowBytes), n * rowBytes);
    ops.launch('convert', 'fromActivation', { out: write(out, 'out'), source: upload(rows), rows: count, columns: channels, stride: channels, offset: 0 });
  };
  const checkLmHead = (classifier: Floats, rows: number, channels: number, vocab: number) => {
    const kernel = kernelOf('lm_head');
    requireConstant(kernel, 'CHANNELS', channels, 'channels');
    requireConstant(kernel, 'VOCAB', vocab, 'vocab');
    checkLength('classifier', classifier, vocab * channels);
  };

  /** A linear layer no compiled kernel fits: the host op, on the arrays synced back first. */
  const hostLinear: LinearOps = {
    qaloraLinearForward(y, x, rows, layer, saved) {
      arrays.syncToHost([y, x, ...(saved ? [saved.u, saved.v] : [])].map((a) => float32(a, 'a linear layer\'s array')));
      return host.qaloraLinearForward(y, x, rows, layer, saved);
    },
    qaloraLinearBackward(dx, dy, rows, layer, saved) {
      const touched = [dx, dy, ...(saved ? [saved.u, saved.v] : []), ...(layer.adapter ? [layer.adapter.gradA, layer.adapter.gradB] : [])];
      arrays.syncToHost(touched.map((a) => float32(a, 'a linear layer\'s array')));
      return host.qaloraLinearBackward(dx, dy, rows, layer, saved);
    },
  };
  const linear = gemmLinearOps(compiledLinearOps(port, hostLinear), port, arrays, driver, deviceUnpool(ops, seedWord), linearOptions, deviceStacking(ops));
  const launches = () => ops.launches() + port.launches() + linear.gemms();
  const run = <T>(result: T): T => {
    arrays.release();
    return result;
  };

  const attentionKernel = ops.has('attention') ? kernelOf('attention') : undefined;
  // Whether attention reads q, k, v, dOut and writes out as 16-bit rows (bf16 activations), not float32.
  const attentionIn16 = attentionKernel?.constants['IO_BF16'] === 1;
  /** `host` as flat rows of `width` in the 16-bit activation type (attention's operands, RMSNorm's kept input). */
  const activationRows = (host: Floats, width: number): Layout => ({ encoding: activation as ActivationType, rows: host.length / width, width, stride: width });
  /** An attention operand in 16-bit rows: where its writer (a linear, RoPE) left them flat, else converted. */
  const attentionRead = (host: Floats, name: string, width: number) => {
    const values = float32(host, name);
    return arrays.read(values, boundary.resident(values, values.length, 'attention', 'forward') ?? activationRows(values, width));
  };

  const rope = (direction: 'forward' | 'backward') => (x: Floats, tables: RopeTables, batch: number, seqLen: number, width: number) => {
    checkRopeShape(tables, seqLen, width);
    requireConstant(kernelOf('rope'), 'HEAD_SIZE', tables.headSize, 'head size');
    const rows = batch * seqLen;
    const cos = frozen(tables.cos, 'cos'), sin = frozen(tables.sin, 'sin');
    const values = float32(x, 'x');
    // q or k as its linear wrote it, turned in place for attention's bf16 form, or into float32 rows for its float32 form.
    const fromLinear = direction === 'forward' ? boundary.resident(values, rows * width, 'rope', 'forwardFromActivation') : undefined;
    // dq or dk for its linear's backward, in the 16-bit rows that reads (as its conversion would round them).
    const toLinear = direction === 'backward' ? boundary.wanted(values, rows * width, 'rope', 'backwardToActivation') : undefined;
    if (fromLinear !== undefined && attentionIn16 && ops.hasEntry('rope', 'forwardInActivation')) {
      ops.launch('rope', 'forwardInActivation', { x: arrays.writeRounded(values, fromLinear), cos, sin, rows, seqLen, width });
    } else if (fromLinear !== undefined) {
      const source = arrays.read(values, fromLinear);
      ops.launch('rope', 'forwardFromActivation', { out: arrays.rewrite(values, dense(values.length)), x: source, cos, sin, rows, seqLen, width });
    } else if (toLinear !== undefined && arrays.residentOf(values) !== undefined && rows * width === values.length) {
      const source = read(x, 'dx');
      ops.launch('rope', 'backwardToActivation', { out: arrays.rewrite(values, toLinear), dx: source, cos, sin, rows, seqLen, width });
    } else {
      const rotated = update(x, 'x');
      // Two literals, not one with a computed key (an object V8 builds slowly and reads slowly).
      ops.launch('rope', direction, direction === 'forward' ? { x: rotated, cos, sin, rows, seqLen, width } : { dx: rotated, cos, sin, rows, seqLen, width });
    }
    return run(undefined);
  };

  // lm_head and the cross-entropy fused: a chunk's logits on cuBLAS, its row losses and (with dx)
  // its gradient by the cross-entropy kernel, in place (f32) or in the bf16 GEMM's operand type,
  // then dx of the chunk's rows += dLogits · classifier. One chunk's buffers in all, whatever rows is.
  const chunkBytes = linearOptions.lmHeadChunkBytes ?? LM_HEAD_CHUNK_BYTES;
  const fusedLmHead: typeof lmHeadCrossEntropy = (dx, x, classifier, targets, mask, rows, channels, vocab, dLoss = 1) => {
    checkLmHead(classifier, rows, channels, vocab);
    requireConstant(kernelOf('cross_entropy'), 'VOCAB', vocab, 'vocab');
    const ids = targetIds(targets, mask, rows, vocab);
    let counted = 0;
    for (let row = 0; row < rows; row++) if (ids[row]! >= 0) counted++;
    // No counted row: no gradient (the unfused backward adds nothing either).
    // Into known zeros every chunk's GEMM overwrites its rows (beta = 0).
    const overwrite = dx !== undefined && counted > 0 && overwriting(float32(dx, 'dx'), rows * channels);
    const gradient = dx === undefined || counted === 0 ? undefined : overwrite ? write(dx, 'dx') : update(dx, 'dx');
    const chunk = Math.min(lmHeadChunkRows(vocab, chunkBytes), rows);
    const input = lmHeadOperand(x, rows, channels), weights = lmHeadClassifier(classifier, vocab, channels);
    const logits = arrays.take(chunk * vocab * 4);
    const dLogits16 = gradient !== undefined && gemmType !== 'f32' ? arrays.take(chunk * vocab * 2) : undefined;
    const rowLoss = arrays.take(rows * 4);
    const common = { rowLoss, targets: upload(ids), mask: maskOf(mask, rows) };
    const elementBytes = gemmType === 'f32' ? 4 : 2;
    const scale = dLoss / counted;
    for (let firstRow = 0; firstRow < rows; firstRow += chunk) {
      const n = Math.min(chunk, rows - firstRow);
      // logits[n, V] = x[firstRow …, C] · classifier[V, C]ᵀ
      gemm!({ a: { ...input, rows: n, offset: firstRow * channels * elementBytes }, b: weights, transposeB: true, out: { buffer: logits, type: 'f32', rows: n, columns: vocab } });
      if (gradient === undefined) {
        ops.launch('cross_entropy', 'chunkLoss', { logits, ...common, firstRow, rows: n });
        continue;
      }
      if (dLogits16 !== undefined) ops.launch('cross_entropy', 'chunkGradientToActivation', { dLogits: dLogits16, logits, ...common, firstRow, rows: n, scale });
      else ops.launch('cross_entropy', 'chunkGradient', { logits, ...common, firstRow, rows: n, scale });
      // dx[firstRow …, C] += dLogits[n, V] · classifier[V, C] (= into known zeros)
      const a: DeviceMatrix = dLogits16 !== undefined ? { buffer: dLogits16, type: gemmType, rows: n, columns: vocab } : { buffer: logits, type: 'f32', rows: n, columns: vocab };
      gemm!({ a, b: weights, out: { buffer: gradient, type: 'f32', rows: n, columns: channels, offset: firstRow * channels * 4 }, beta: overwrite ? 0 : 1 });
    }
    const lossAndCount = arrays.take(8);
    ops.launch('cross_entropy', 'loss', { lossAndCount, ...common, rows });
    driver.synchronize();
    const result = new Float32Array(2);
    lossAndCount.download(result);
    return run({ loss: counted === 0 ? NaN : result[0]! / counted, counted });
  };
  const hasFusedLmHead = gemm !== undefined && ['chunkLoss', 'chunkGradient', 'chunkGradientToActivation'].every((entry) => ops.hasEntry('cross_entropy', entry));

  const checkAttention = (shape: AttentionShape) => {
    const kernel = attentionKernel!;
    requireConstant(kernel, 'HEADS', shape.heads, 'heads');
    requireConstant(kernel, 'KV_HEADS', shape.kvHeads, 'kv heads');
    requireConstant(kernel, 'HEAD_SIZE', shape.headSize, 'head size');
  };

  /** The output of the last block norm (a KeepingInput call), for the layout of a fresh one. */
  let lastBlockNorm: Float32Array | undefined;
  /**
   * RMSNorm's forward; with `kept`, x also goes into it in 16-bit rows (the KeepingInput entries),
   * the copy the backward reads instead of the float32 residual stream.
   */
  const normalize = (out: Floats, rstd: Floats, kept: Floats | undefined, x: Floats, weight: Floats, rows: number, channels: number, eps: number) => {
    const kernel = kernelOf('rmsnorm');
    requireConstant(kernel, 'CHANNELS', channels, 'channels');
    if (Math.fround(kernel.constants['EPS']!) !== Math.fround(eps)) throw new RangeError(`${kernel.kernel} was compiled for eps ${kernel.constants['EPS']}, the call has ${eps}`);
    // Rounded here when its readers (the q/k/v or gate/up linears, lm_head's bf16 GEMM) take it in 16 bits.
    const values = float32(out, 'out');
    // A block's norm (the calls that keep their input) feeds linear layers: an output array on the
    // device for the first time (the first step's; recompute = mlp's each block's own) takes the
    // layout the previous block norm's readers took, where its own readers are not known yet,
    // rather than float32 once and 16-bit rows after, in a buffer of twice the size.
    const count = rows * channels;
    const fresh = kept !== undefined && lastBlockNorm !== undefined && arrays.residentOf(values) === undefined;
    const toLinear = boundary.wanted(values, count, 'rmsnorm', 'forwardToActivation') ?? (fresh ? boundary.wanted(lastBlockNorm!, count, 'rmsnorm', 'forwardToActivation') : undefined);
    if (kept !== undefined) lastBlockNorm = values;
    // A decode step's few rows: a block a row (the warp-a-row entries leave the GPU idle there).
    const fewRows = toLinear !== undefined && kept === undefined && rows <= RMSNORM_FEW_ROWS && ops.hasEntry('rmsnorm', 'forwardToActivationFewRows');
    const entry = fewRows ? 'forwardToActivationFewRows' : `${toLinear !== undefined ? 'forwardToActivation' : 'forward'}${kept !== undefined ? 'KeepingInput' : ''}`;
    if (kept !== undefined) checkLength('kept', kept, count);
    ops.launch('rmsnorm', entry, {
      out: toLinear !== undefined ? arrays.writeRounded(values, toLinear) : write(out, 'out', count), rstd: write(rstd, 'rstd', rows),
      ...(kept !== undefined ? { kept: arrays.write(float32(kept, 'kept'), activationRows(kept, channels)) } : {}),
      x: read(x, 'x', count), weight: frozen(weight, 'weight'), rows,
    });
    return run(undefined);
  };
  /** The 16-bit kept input needs a 16-bit activation type and the kernel's entries (a manifest from before has none). */
  const keepsNormInput = activation !== 'f32' && ['forwardKeepingInput', 'forwardToActivationKeepingInput', 'backwardFromActivation', 'backwardOverwriteFromActivation'].every((entry) => ops.hasEntry('rmsnorm', entry));

  return {
    name: 'cuda',
    stats: linear.stats,
    qaloraLinearForward: linear.qaloraLinearForward,
    qaloraLinearBackward: linear.qaloraLinearBackward,
    launches,
    earlyRoundings: () => arrays.earlyRoundings,
    decodeSteps: (shape, ropeTheta) => deviceDecodeSteps({
      driver, ops, arrays, boundary,
      embeddingTable: (table, vocab, channels) => ({ entry: embeddingFromActivation ? 'forwardFromActivationTable' : 'forward', table: embeddingTable(table, vocab, channels) }),
    }, shape, ropeTheta),
    deviceStats: () => ({ peakBytes: arrays.allocatedBytes, launches: launches() }),
    adamw: (parameters, options) => new DeviceAdamW(parameters, options, arrays, ops, () => driver.synchronize(), activation as ActivationType),
    ...withFrozenQuantizer(deviceFrozenQuantizer(driver, kernels.quantize ?? [], arrays, linearOptions.quantize ?? quantizePathOf(process.env['QALC_CUDA_QUANTIZE']))),
    ...(hasFusedLmHead ? { lmHeadCrossEntropy: fusedLmHead } : {}),

    embeddingForward(out, tokens, table, count, channels) {
      checkLength('embedding output', out, count * channels);
      const kernel = kernelOf('embedding');
      requireConstant(kernel, 'CHANNELS', channels, 'channels');
      checkTokens(tokens, count, table.length / channels);
      const ids = new Int32Array(count);
      for (let n = 0; n < count; n++) ids[n] = tokens[n]!;
      const vocab = table.length / channels;
      if (gatheredOnHost) {
        gatherOnHost(out, ids, table, count, channels);
        return run(undefined);
      }
      ops.launch('embedding', embeddingFromActivation ? 'forwardFromActivationTable' : 'forward', { out: write(out, 'out'), tokens: upload(ids), table: embeddingTable(table, vocab, channels), rows: count });
      return run(undefined);
    },

    rmsnormForward(out, rstd, x, weight, rows, channels, eps) {
      return normalize(out, rstd, undefined, x, weight, rows, channels, eps);
    },

    ...(keepsNormInput ? { rmsnormForwardKeepingInput: (out: Floats, rstd: Floats, kept: Floats, x: Floats, weight: Floats, rows: number, channels: number, eps: number) => normalize(out, rstd, kept, x, weight, rows, channels, eps) } : {}),

    rmsnormBackward(dx, dy, x, weight, rstd, rows, channels) {
      const kernel = kernelOf('rmsnorm');
      requireConstant(kernel, 'CHANNELS', channels, 'channels');
      // The final norm's dx is the residual stream's first gradient: into known zeros, written.
      const overwrite = overwriting(float32(dx, 'dx'), rows * channels, 'rmsnorm', 'backwardOverwrite');
      // x as the forward kept it (rmsnormForwardKeepingInput: 16-bit rows), else float32.
      const values = float32(x, 'x');
      const kept = boundary.resident(values, rows * channels, 'rmsnorm', overwrite ? 'backwardOverwriteFromActivation' : 'backwardFromActivation');
      const entry = `${overwrite ? 'backwardOverwrite' : 'backward'}${kept !== undefined ? 'FromActivation' : ''}`;
      ops.launch('rmsnorm', entry, {
        dx: overwrite ? write(dx, 'dx') : update(dx, 'dx'), dy: read(dy, 'dy', rows * channels), x: kept !== undefined ? arrays.read(values, kept) : read(x, 'x', rows * channels),
        weight: frozen(weight, 'weight'), rstd: read(rstd, 'rstd', rows), rows,
      });
      return run(undefined);
    },

    ropeForward: rope('forward'),
    ropeBackward: rope('backward'),

    attentionSavedLength: (shape) => (attentionKernel !== undefined ? shape.batch * shape.heads * shape.seqLen : probabilitiesLength(shape)),

    attentionForward(out, saved, q, k, v, shape) {
      if (attentionKernel === undefined) {
        arrays.syncToHost([out, saved, q, k, v].map((a) => float32(a, 'attention')));
        return host.attentionForward(out, saved, q, k, v, shape);
      }
      checkAttention(shape);
      const { batch, seqLen } = shape;
      if (attentionIn16) {
        // out in the layout the o linear read it in last time (flat 16-bit rows), else flat.
        const values = float32(out, 'out'), qWidth = shape.heads * shape.headSize, kvWidth = shape.kvHeads * shape.headSize;
        const outLayout = boundary.wanted(values, values.length, 'attention', 'forward') ?? activationRows(values, qWidth);
        ops.launch('attention', 'forward', {
          out: arrays.writeRounded(values, outLayout), lse: write(saved, 'lse'),
          q: attentionRead(q, 'q', qWidth), k: attentionRead(k, 'k', kvWidth), v: attentionRead(v, 'v', kvWidth), batch, seqLen,
        });
        return run(undefined);
      }
      ops.launch('attention', 'forward', {
        out: write(out, 'out'), lse: write(saved, 'lse'), q: read(q, 'q'), k: read(k, 'k'), v: read(v, 'v'), batch, seqLen,
      });
      return run(undefined);
    },

    attentionBackward(dq, dk, dv, dOut, q, k, v, out, saved, shape) {
      if (attentionKernel === undefined) {
        arrays.syncToHost([dq, dk, dv, dOut, q, k, v, out, saved].map((a) => float32(a, 'attention')));
        return host.attentionBackward(dq, dk, dv, dOut, q, k, v, out, saved, shape);
      }
      checkAttention(shape);
      const { batch, seqLen } = shape;
      const rows = batch * shape.heads * seqLen;
      const delta = arrays.take(rows * 4);
      const qWidth = shape.heads * shape.headSize, kvWidth = shape.kvHeads * shape.headSize;
      // The 16-bit form: dOut (the o linear's float32 dx) converted once, q, k, v and out where the forward left them.
      const operand = attentionIn16 ? attentionRead : (host: Floats, name: string) => read(host, name);
      const common = { dOut: operand(dOut, 'dOut', qWidth), batch, seqLen };
      const inputs = { q: operand(q, 'q', qWidth), k: operand(k, 'k', kvWidth), v: operand(v, 'v', kvWidth), lse: read(saved, 'lse', rows), delta };
      ops.launch('attention', 'backward_delta', { delta, out: operand(out, 'out', qWidth), ...common });
      ops.launch('attention', 'backward_dq', { dq: update(dq, 'dq'), ...inputs, ...common });
      ops.launch('attention', 'backward_dkdv', { dk: update(dk, 'dk'), dv: update(dv, 'dv'), ...inputs, ...common });
      return run(undefined);
    },

    swigluForward(out, gate, up, count) {
      // Between the gate/up linears and the down linear: all three in 16 bits, or all in float32.
      const [g, u, o] = [gate, up, out].map((a) => float32(a, 'a SwiGLU operand')) as [Float32Array, Float32Array, Float32Array];
      const entry = 'forwardInActivation';
      const [gateLayout, upLayout] = [boundary.resident(g, count, 'swiglu', entry), boundary.resident(u, count, 'swiglu', entry)];
      // Its reader is the down linear, which takes its input in the activation type, the gate's
      // flat rows: an output on the device for the first time (the first step's) is written so
      // rather than in float32 once (the gate and up read widened into two float32 temporaries,
      // 256 MiB of the pool at the 7B shape, and a float32 buffer for good).
      const outLayout = boundary.wanted(o, count, 'swiglu', entry) ?? (arrays.residentOf(o) === undefined ? gateLayout : undefined);
      if (gateLayout !== undefined && upLayout !== undefined && outLayout !== undefined) {
        ops.launch('swiglu', entry, { out: arrays.writeRounded(o, outLayout), gate: arrays.read(g, gateLayout), up: arrays.read(u, upLayout), count });
      } else {
        ops.launch('swiglu', 'forward', { out: write(out, 'out', count), gate: read(gate, 'gate', count), up: read(up, 'up', count), count });
      }
      return run(undefined);
    },

    swigluBackward(dGate, dUp, dOut, gate, up, count) {
      const [g, u] = [float32(gate, 'gate'), float32(up, 'up')];
      const entry = 'backwardFromActivation';
      const [gateLayout, upLayout] = [boundary.resident(g, count, 'swiglu', entry), boundary.resident(u, count, 'swiglu', entry)];
      const fromLinears = gateLayout !== undefined && upLayout !== undefined;
      // Into known zeros, dGate and dUp go straight into the 16-bit rows the gate and up linears read them in.
      const [dg, du] = [float32(dGate, 'dGate'), float32(dUp, 'dUp')];
      const toEntry = 'backwardToActivation';
      const toLinears = fromLinears && overwriting(dg, count, 'swiglu', toEntry) && overwriting(du, count) ? [boundary.wanted(dg, count, 'swiglu', toEntry), boundary.wanted(du, count, 'swiglu', toEntry)] : [];
      if (gateLayout !== undefined && upLayout !== undefined && toLinears[0] !== undefined && toLinears[1] !== undefined) {
        ops.launch('swiglu', toEntry, {
          dGate: arrays.writeRounded(dg, toLinears[0]), dUp: arrays.writeRounded(du, toLinears[1]), dOut: read(dOut, 'dOut', count), gate: arrays.read(g, gateLayout), up: arrays.read(u, upLayout), count,
        });
        return run(undefined);
      }
      ops.launch('swiglu', fromLinears ? entry : 'backward', {
        dGate: update(dGate, 'dGate'), dUp: update(dUp, 'dUp'), dOut: read(dOut, 'dOut', count),
        gate: fromLinears ? arrays.read(g, gateLayout) : read(gate, 'gate', count), up: fromLinears ? arrays.read(u, upLayout) : read(up, 'up', count), count,
      });
      return run(undefined);
    },

    lmHeadForward(logits, x, classifier, rows, channels, vocab) {
      checkLmHead(classifier, rows, channels, vocab);
      const out = write(logits, 'logits', rows * vocab);
      if (gemm !== undefined) {
        // logits[rows, V] = x[rows, C] · classifier[V, C]ᵀ
        gemm({ a: lmHeadOperand(x, rows, channels), b: lmHeadClassifier(classifier, vocab, channels), transposeB: true, out: { buffer: out, type: 'f32', rows, columns: vocab } });
        return run(undefined);
      }
      ops.launch('lm_head', 'forward', { logits: out, x: read(x, 'x', rows * channels), classifier: frozen(classifier, 'classifier'), rows });
      return run(undefined);
    },

    lmHeadBackward(dx, dLogits, classifier, rows, channels, vocab) {
      checkLmHead(classifier, rows, channels, vocab);
      if (gemm !== undefined) {
        // dx[rows, C] += dLogits[rows, V] · classifier[V, C] (= into known zeros)
        const overwrite = overwriting(float32(dx, 'dx'), rows * channels);
        const out = overwrite ? write(dx, 'dx') : update(dx, 'dx');
        gemm({ a: lmHeadOperand(dLogits, rows, vocab), b: lmHeadClassifier(classifier, vocab, channels), out: { buffer: out, type: 'f32', rows, columns: channels }, beta: overwrite ? 0 : 1 });
        return run(undefined);
      }
      ops.launch('lm_head', 'backward', { dx: update(dx, 'dx'), dLogits: read(dLogits, 'dLogits', rows * vocab), classifier: frozen(classifier, 'classifier'), rows });
      return run(undefined);
    },

    crossEntropyForward(probs, logits, targets, mask, rows, vocab): CrossEntropyResult {
      requireConstant(kernelOf('cross_entropy'), 'VOCAB', vocab, 'vocab');
      const ids = targetIds(targets, mask, rows, vocab);
      const rowLoss = arrays.take(rows * 4);
      let lossAndCount = lossBuffers.get(probs);
      if (lossAndCount === undefined) lossBuffers.set(probs, (lossAndCount = arrays.allocate(8)));
      const common = { targets: upload(ids), mask: maskOf(mask, rows), rows };
      ops.launch('cross_entropy', 'forward', { probs: write(probs, 'probs', rows * vocab), rowLoss, logits: read(logits, 'logits', rows * vocab), ...common });
      ops.launch('cross_entropy', 'loss', { lossAndCount, rowLoss, ...common });
      driver.synchronize();
      const result = new Float32Array(2);
      lossAndCount.download(result);
      const counted = result[1]!;
      return run({ loss: counted === 0 ? NaN : result[0]! / counted, counted });
    },

    crossEntropyBackward(dLogits, probs, targets, mask, rows, vocab, dLoss = 1) {
      const lossAndCount = lossBuffers.get(probs);
      if (lossAndCount === undefined) throw new Error('crossEntropyBackward before its forward: the cuda ops keep the count of the forward\'s rows');
      const ids = targetIds(targets, mask, rows, vocab);
      ops.launch('cross_entropy', 'backward', {
        dLogits: update(dLogits, 'dLogits'), probs: read(probs, 'probs', rows * vocab), targets: upload(ids),
        mask: maskOf(mask, rows), lossAndCount, rows, dLoss,
      });
      return run(undefined);
    },

    residualAdd(out, a, b, count) {
      // b is the o or down linear's output: read where that linear left it.
      const addend = float32(b, 'b');
      const fromLinear = boundary.resident(addend, count, 'residual', 'addFromActivation');
      ops.launch('residual', fromLinear !== undefined ? 'addFromActivation' : 'add', {
        out: write(out, 'out', count), a: read(a, 'a', count), b: fromLinear !== undefined ? arrays.read(addend, fromLinear) : read(b, 'b', count), count,
      });
      return run(undefined);
    },

    zeroFill(x) {
      arrays.zeroLater(float32(x, 'x'));
    },

    syncToHost(hosts) {
      arrays.syncToHost(hosts.map((h) => float32(h, 'a synced array')));
    },
  };
}

/** Targets as int32 (-1 for a row that does not count), checked as the TypeScript op checks them. */
function targetIds(targets: ArrayLike<number>, mask: ArrayLike<number> | undefined, rows: number, vocab: number): Int32Array {
  checkTargets(targets, mask, rows, vocab);
  // A loop, not Int32Array.from({ length }, …): that takes the iterator protocol's slow path (~0.2 ms at 2048 rows).
  const ids = new Int32Array(rows);
  for (let row = 0; row < rows; row++) ids[row] = countsTowardLoss(targets, mask, row) ? targets[row]! : -1;
  return ids;
}

/** One line: what ran where. */
export function describeDeviceOps(ops: DeviceOps): string {
  const { peakBytes, launches } = ops.deviceStats!();
  return `${describeCompiledLinearStats(ops.stats, CUDA_WORDING)}; ${describeLinearPaths(ops.stats)}; every other op on the GPU's model-op kernels; ${launches} launches; ${(peakBytes / 2 ** 20).toFixed(1)} MiB of device memory allocated at the most`;
}

