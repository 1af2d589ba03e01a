// The cuda backend. With the spec's model-op kernels (a compile folder from a qalc that emits
// them, or the in-memory compile) every op runs on the GPU and the data stays there
// (device-ops.ts); with linear kernels only (a compile folder from before), the quantized linear
// layers run on the GPU and the rest on the CPU, copying each linear call's inputs up and its
// outputs down (cuda-ops.ts). Fails with a reason a user can act on: no GPU, an old GPU, no
// fatbins and no nvcc.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ModelOp } from '../../backends/cuda/model-ops.ts';
import { planPrecision } from '../../ir/passes/share-layers.ts';
import type { Plan } from '../../plan/plan.ts';
import type { Backend } from '../backend.ts';
import { defaultCompileDir } from '../compiled-kernels.ts';
import { cpuBackend } from '../cpu/backend.ts';
import type { SyncTrainingOps, TrainingOps } from '../ops.ts';
import { cudaDriver, type CudaDevice, type CudaDevicePort } from './cuda.ts';
import { cudaOps, describeStats } from './cuda-ops.ts';
import { describeDeviceOps, deviceOps, type DeviceOps } from './device-ops.ts';
import { archFor, loadCudaKernels, type CudaKernelSet } from './kernels.ts';
import { describeProfile, profiledPort, profileMethodOf, type ProfiledPort, type ProfileMethod } from './profiled-port.ts';
import { eventProfiledPort } from './event-profiled-port.ts';
import { graphSettingOf } from './device-decode.ts';
import { stepGraphPort } from './step-graph.ts';

export interface CudaBackend extends Backend {
  readonly name: 'cuda';
  readonly ops: TrainingOps;
  readonly device: CudaDevice;
}

/** Where `qalc compile` writes a spec's CUDA kernels and fatbins unless told otherwise. */
export function defaultKernelDir(plan: Plan): string {
  return join(defaultCompileDir(plan), 'cuda');
}

/** The model ops a training step needs on the device; attention may stay on the host (a head size its kernel does not take). */
const DEVICE_STEP_OPS: readonly ModelOp[] = ['embedding', 'rmsnorm', 'convert', 'rope', 'residual', 'swiglu', 'lm_head', 'cross_entropy'];

/** Why the kernel set cannot run every op on the device, or null. */
function missingModelOps(kernels: CudaKernelSet): string | null {
  const have = new Set(kernels.modelOps.map((k) => k.manifest.op));
  const missing = DEVICE_STEP_OPS.filter((op) => !have.has(op));
  return missing.length === 0 ? null : `no model-op kernels for ${missing.join(', ')} (a compile folder from before they were emitted: run \`qalc compile\` again)`;
}

/**
 * The device ops over a profiled port (events: CUDA events, where the driver has them; waits:
 * every call waited for): their deviceStats() carry the profile (summary.json's device.profile,
 * train.jsonl's profile_ms).
 */
export function profiledDeviceOps(driver: CudaDevicePort, kernels: Pick<CudaKernelSet, 'kernels' | 'modelOps'> & Partial<Pick<CudaKernelSet, 'quantize'>>, host: SyncTrainingOps, activation: string, method: ProfileMethod = 'waits'): { ops: DeviceOps; profiled: ProfiledPort } {
  const { events } = driver;
  const profiled = method === 'events' && events !== undefined ? eventProfiledPort(driver, events) : profiledPort(driver);
  const ops = deviceOps(profiled, kernels, host, activation);
  return { ops: { ...ops, deviceStats: () => ({ ...ops.deviceStats!(), profile: profiled.profile() }) }, profiled };
}

export async function cudaBackend(plan: Plan, options: { readonly kernelDir?: string } = {}): Promise<CudaBackend> {
  const driver = cudaDriver();
  const { device } = driver;
  const arch = archFor(device.computeCapability);
  // A --kernels folder that `qalc compile --out DIR` wrote sits in DIR/cuda, beside its manifest.
  const compileDir = options.kernelDir !== undefined && existsSync(join(dirname(options.kernelDir), 'manifest.json')) ? dirname(options.kernelDir) : undefined;
  const kernels = await loadCudaKernels(plan, { dir: options.kernelDir ?? defaultKernelDir(plan), arch, ...(compileDir !== undefined ? { compileDir } : {}) });
  const cpu = cpuBackend();
  const gpu = `cuda backend: ${device.name} (compute ${device.computeCapability.join('.')}), ${kernels.summary}`;
  const missing = missingModelOps(kernels);
  // The driver's buffers and modules live as long as the process: close() has nothing to free yet.
  if (missing === null) {
    // QALC_CUDA_PROFILE=1: every device call timed on the GPU by events (event-profiled-port.ts);
    // =waits: every call waited for and timed by the host (profiled-port.ts).
    const method = profileMethodOf(process.env['QALC_CUDA_PROFILE'], true);
    // QALC_CUDA_GRAPH=0: the training step's backward launched op by op too (step-graph.ts); a
    // profile times every call, which a replayed graph does not make one by one.
    const step = stepGraphPort(driver, !graphSettingOf(process.env['QALC_CUDA_GRAPH']) ? 'QALC_CUDA_GRAPH=0'
      : method !== undefined ? `QALC_CUDA_PROFILE=${process.env['QALC_CUDA_PROFILE']} times every device call` : undefined);
    const { ops: stepOps, profiled } = method !== undefined
      ? profiledDeviceOps(step.port, kernels, cpu.ops, planPrecision(plan, 'cuda'), method)
      : { ops: deviceOps(step.port, kernels, cpu.ops, planPrecision(plan, 'cuda')), profiled: undefined };
    const ops: DeviceOps = { ...stepOps, stepGraph: step.graph };
    const attention = kernels.modelOps.some((k) => k.manifest.op === 'attention') ? '' : ' but attention (no kernel for this head size: on the CPU)';
    const profiling = profiled === undefined ? ''
      : profiled.method === 'waits' ? '; PROFILED (QALC_CUDA_PROFILE=waits: every device call waited for, so slower than a plain run)'
      : '; PROFILED (QALC_CUDA_PROFILE: CUDA events around every device call, read at each step\'s end)';
    // lm_head (the dense frozen classifier) on cuBLAS where libcublas loads, else on its own kernel (device-ops.ts).
    const fused = ops.lmHeadCrossEntropy !== undefined ? ', fused with the cross-entropy by chunks of rows where only the loss is wanted' : '';
    const blas = driver.blas.available ? `lm_head on cuBLAS ${driver.blas.version} (${driver.blas.library})${fused}` : `lm_head on qalc's own kernel (${driver.blas.reason})`;
    const quantized = ops.frozenQuantizer !== undefined ? 'frozen weights quantized on the GPU (the compiled quantize and pack kernels)'
      : `frozen weights quantized on the host (${kernels.quantize.length === 0 ? 'no quantize kernels in the compile folder' : 'QALC_CUDA_QUANTIZE=host'})`;
    const notice = [...(cpu.notice ? [cpu.notice] : []), `${gpu}; every op on the GPU${attention}, the data kept there between ops; ${blas}; ${quantized}${profiling}`].join('\n');
    const report = () => [describeDeviceOps(ops), ...(profiled === undefined ? [] : [describeProfile(profiled.profile(), profiled.method)])].join('\n');
    return { name: 'cuda', ops, device, notice, report, close: () => {} };
  }
  const ops = cudaOps(driver, kernels, cpu.ops);
  const notice = [...(cpu.notice ? [cpu.notice] : []), `${gpu}; the quantized linear layers on the GPU, the rest on the CPU (${cpu.ops.name}): ${missing}`].join('\n');
  return { name: 'cuda', ops, device, notice, report: () => describeStats(ops.stats), close: () => {} };
}
