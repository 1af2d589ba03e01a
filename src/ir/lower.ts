// Lowering: the plan to kernel IR, as the list of its passes. Each pass is a pure function
// from one program to the next: the shared PASSES, then the target's own (TARGET_PASSES: CUDA's
// tensor-core, decode and launch decisions); `lowerPlanWithTrace` keeps every intermediate
// program so `qalc inspect --stage ir` can show the IR after any pass.
import type { Plan } from '../plan/plan.ts';
import type { KernelIR, KernelProgram, LoweredKernel, LoweredProgram, Target } from './kernel-ir.ts';
import { assignBindings } from './passes/bindings.ts';
import { assignDtypes, chooseShapeClass, chooseTiling, chooseWeightLayout } from './passes/choose.ts';
import { fuseAdapterEpilogue, fusePoolingIntoInputLoad } from './passes/fuse.ts';
import { chooseCudaKernels, type CudaPassOptions, type CudaProgram } from './passes/choose-cuda.ts';
import { instantiateRoles, shareIdenticalLayers, type LowerOptions as SharedLowerOptions } from './passes/share-layers.ts';

export interface LowerOptions extends SharedLowerOptions {
  /** Options of the CUDA pass (wgmma on sm_90a, on by default). */
  readonly cuda?: CudaPassOptions;
}

type Pass = (program: KernelProgram) => KernelProgram;

/** The passes after the first, in order. */
export const PASSES: readonly (readonly [name: string, pass: Pass])[] = [
  ['instantiateRoles', instantiateRoles],
  ['chooseShapeClass', chooseShapeClass],
  ['assignDtypes', assignDtypes],
  ['chooseWeightLayout', chooseWeightLayout],
  ['chooseTiling', chooseTiling],
  ['fusePoolingIntoInputLoad', fusePoolingIntoInputLoad],
  ['fuseAdapterEpilogue', fuseAdapterEpilogue],
  ['assignBindings', assignBindings],
];

export interface PassOutput {
  readonly pass: string;
  readonly program: KernelProgram;
}

/** The passes a target runs after the shared ones, on a checked lowered program. */
export function targetPasses(target: Target, options: LowerOptions = {}): readonly (readonly [name: string, pass: (program: LoweredProgram) => LoweredProgram])[] {
  return target === 'cuda' ? [['chooseCudaKernels', (program) => chooseCudaKernels(program, options.cuda)]] : [];
}

export function lowerPlanWithTrace(plan: Plan, target: Target, options: LowerOptions = {}): { readonly trace: readonly PassOutput[]; readonly program: LoweredProgram } {
  let program = shareIdenticalLayers(plan, target, options);
  const trace: PassOutput[] = [{ pass: 'shareIdenticalLayers', program }];
  for (const [name, pass] of PASSES) {
    program = pass(program);
    trace.push({ pass: name, program });
  }
  let lowered = checkLowered(program);
  for (const [name, pass] of targetPasses(target, options)) {
    lowered = pass(lowered);
    trace.push({ pass: name, program: lowered });
  }
  return { trace, program: lowered };
}

export function lowerPlan(plan: Plan, target: 'cuda', options?: LowerOptions): CudaProgram;
export function lowerPlan(plan: Plan, target: Target, options?: LowerOptions): LoweredProgram;
export function lowerPlan(plan: Plan, target: Target, options: LowerOptions = {}): LoweredProgram {
  return lowerPlanWithTrace(plan, target, options).program;
}

/** The IR after one pass as indented JSON, for `qalc inspect --stage ir`. */
export function dumpProgram(program: KernelProgram): string {
  return `${JSON.stringify(program, null, 2)}\n`;
}

const REQUIRED = ['shapeClass', 'dtypes', 'weightLayout', 'tiling', 'pooling', 'epilogue', 'constants', 'bindings', 'uniforms', 'entryPoints'] as const;

function isLowered(kernel: KernelIR): kernel is LoweredKernel {
  return REQUIRED.every((field) => kernel[field] !== undefined);
}

/** Every field set, names unique, limits respected: what a backend may rely on. */
export function checkLowered(program: KernelProgram): LoweredProgram {
  const names = new Set<string>();
  const kernels = program.kernels.map((kernel) => {
    if (!isLowered(kernel)) throw new Error(`kernel ${kernel.name} is missing ${REQUIRED.filter((f) => kernel[f] === undefined).join(', ')} after lowering`);
    if (!/^[a-z][a-z0-9_]*$/.test(kernel.name)) throw new Error(`kernel name ${JSON.stringify(kernel.name)} is not an identifier`);
    if (names.has(kernel.name)) throw new Error(`two kernels are named ${kernel.name}`);
    names.add(kernel.name);
    const [x, y, z] = kernel.tiling.workgroupSize;
    if (x * y * z > program.limits.maxInvocationsPerWorkgroup) throw new Error(`${kernel.name}: workgroup of ${x * y * z} threads exceeds the target's ${program.limits.maxInvocationsPerWorkgroup}`);
    if (kernel.tiling.workgroupBytes > program.limits.maxWorkgroupBytes) throw new Error(`${kernel.name}: ${kernel.tiling.workgroupBytes} bytes of workgroup memory exceed the target's ${program.limits.maxWorkgroupBytes}`);
    const storage = kernel.bindings.filter((b) => b.access !== 'uniform').length;
    if (storage > program.limits.maxStorageBuffersPerStage) throw new Error(`${kernel.name}: ${storage} storage buffers exceed the target's ${program.limits.maxStorageBuffersPerStage}`);
    return kernel;
  });
  return { ...program, kernels };
}
