// Lowering: the plan to kernel IR. Identical layers share kernels, every pass is a pure
// function with a dumpable output, tiling respects the target's limits, same plan → same IR.
import { describe, expect, it } from 'vitest';
import { frontEnd } from '../../src/compile.ts';
import type { LoweredProgram } from '../../src/ir/kernel-ir.ts';
import { dumpProgram, lowerPlan, lowerPlanWithTrace } from '../../src/ir/lower.ts';
import { evaluateDispatch, formatDispatch } from '../../src/ir/size-expr.ts';
import type { Plan } from '../../src/plan/plan.ts';
import { KERNEL_CASES, syntheticPlan } from './kernel-cases.ts';

const stories = (): Plan => {
  const { plan, diagnostics } = frontEnd('examples/stories260k.qal');
  if (!plan) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return plan;
};

const kernel = (program: LoweredProgram, name: string) => {
  const found = program.kernels.find((k) => k.name === name);
  if (!found) throw new Error(`no kernel ${name} in ${program.kernels.map((k) => k.name).join(', ')}`);
  return found;
};

describe('lowerPlan on stories260K', () => {
  const program = lowerPlan(stories(), 'wgsl');

  it('makes one configuration per distinct layer shape and shares it across blocks', () => {
    expect(program.configs.map((c) => [c.id, c.layers.length])).toEqual([
      ['k64_n64_b4_g16_qalora_r4_mean', 10], // q, o
      ['k64_n32_b4_g16_qalora_r4_mean', 10], // k, v
      ['k64_n172_b4_g16_qalora_r4_mean', 10], // gate, up
      ['k172_n64_b4_g43_qalora_r4_mean', 5], // down, group 43 from the override
    ]);
    expect(program.skipped).toEqual([]);
  });

  it('keys each role on the fields it reads: adapter_grad ignores K and the group', () => {
    const shared = kernel(program, 'adapter_grad_l4_n64_r4_f32');
    expect(shared.configIds).toEqual(['k64_n64_b4_g16_qalora_r4_mean', 'k172_n64_b4_g43_qalora_r4_mean']);
    expect(shared.layers).toHaveLength(15);
    // 4 configs × 8 roles, less the one adapter_grad shared.
    expect(program.kernels).toHaveLength(31);
    expect(new Set(program.kernels.map((k) => k.name)).size).toBe(31);
  });

  it('records the spec lines every kernel came from', () => {
    expect(kernel(program, 'forward_k172_n64_b4_g43_qalora_r4_mean_f32').sources).toEqual([
      'examples/stories260k.qal:11', 'examples/stories260k.qal:22', 'examples/stories260k.qal:18',
    ]);
  });

  it('splits the reduction so no chunk crosses a quantization group', () => {
    const down = kernel(program, 'forward_k172_n64_b4_g43_qalora_r4_mean_f32');
    expect(down.tiling).toMatchObject({ tileRows: 64, tileColumns: 64, tileReduce: 16, chunksPerGroup: 3 });
    expect(down.weightLayout).toMatchObject({ format: 'gptq-v1', bits: 4, wordRows: 22, codesStraddleWords: false });
  });

  it('fuses pooling into the forward input load and the adapter into the epilogues', () => {
    const forward = kernel(program, 'forward_k64_n64_b4_g16_qalora_r4_mean_f32');
    expect(forward.pooling).toEqual({ group: 16, groups: 4, factor: 1 / 16, saves: 'pooledInput' });
    expect(forward.epilogue).toEqual({ kind: 'adapter', rank: 4, dropout: false, saves: 'adapterActivation' });
    expect(kernel(program, 'decode_k64_n64_b4_g16_qalora_r4_mean_f32').pooling).not.toBeNull();
    expect(kernel(program, 'backward_data_k64_n64_b4_g16_unpool_mean_f32').epilogue).toEqual({ kind: 'unpool', factor: 1 / 16, group: 16 });
    expect(kernel(program, 'dequantize_kp64_n64_b4_g16_f32').epilogue).toEqual({ kind: 'none' });
  });

  it('gives bindings meaningful names, one uniform struct, and dispatches linear in T', () => {
    const forward = kernel(program, 'forward_k64_n172_b4_g16_qalora_r4_mean_f32');
    expect(forward.bindings.map((b) => `${b.binding}:${b.name}:${b.access}`)).toEqual([
      '0:params:uniform', '1:input:read', '2:qweight:read', '3:groupScalesAndZeros:read', '4:adapterWeights:read',
      '5:output:read_write', '6:pooledInput:read_write', '7:adapterActivation:read_write',
    ]);
    expect(forward.bindings[3]!.parts.map((p) => [p.name, p.offset])).toEqual([['groupScales', 0], ['groupZeros', 4 * 172]]);
    expect(forward.uniforms).toEqual([
      { name: 'tokens', type: 'u32', offset: 0, doc: 'T, rows of x' },
      { name: 'adapterScale', type: 'f32', offset: 4, doc: 'σ = alpha / rank' },
    ]);
    const [x, y] = forward.entryPoints[0]!.dispatch;
    expect([formatDispatch(x), formatDispatch(y)]).toEqual(['ceil(172 / 64)', 'ceil(T / 64)']);
    expect([evaluateDispatch(x, 37), evaluateDispatch(y, 37)]).toEqual([3, 1]);
    const grads = kernel(program, 'adapter_grad_l4_n172_r4_f32');
    expect(grads.entryPoints.map((e) => `${e.name} ${formatDispatch(e.dispatch[0])}`)).toEqual([
      'adapterOutputGrads ceil((4*T + 688) / 256)', 'adapterInputGrads ceil((4*T + 16) / 256)',
    ]);
  });

  it('stays within WebGPU’s guaranteed limits', () => {
    for (const k of program.kernels) {
      expect(k.bindings.filter((b) => b.access !== 'uniform').length, k.name).toBeLessThanOrEqual(8);
      expect(k.tiling.workgroupBytes, k.name).toBeLessThanOrEqual(16384);
    }
  });
});

describe('the passes', () => {
  it('run in the documented order, each one changing the program, each output dumpable as JSON', () => {
    const { trace } = lowerPlanWithTrace(stories(), 'wgsl');
    expect(trace.map((t) => t.pass)).toEqual([
      'shareIdenticalLayers', 'instantiateRoles', 'chooseShapeClass', 'assignDtypes', 'chooseWeightLayout',
      'chooseTiling', 'fusePoolingIntoInputLoad', 'fuseAdapterEpilogue', 'assignBindings',
    ]);
    for (let i = 1; i < trace.length; i++) expect(dumpProgram(trace[i]!.program), `${trace[i]!.pass} changed nothing`).not.toBe(dumpProgram(trace[i - 1]!.program));
    for (const { program } of trace) expect(JSON.parse(dumpProgram(program))).toEqual(JSON.parse(JSON.stringify(program)));
    const afterShape = trace.find((t) => t.pass === 'chooseShapeClass')!.program;
    expect(afterShape.kernels.every((k) => k.shapeClass !== undefined && k.tiling === undefined)).toBe(true);
  });

  it('for CUDA end with the CUDA pass, whose tensor-core, decode and launch decisions the trace shows', () => {
    const { trace, program } = lowerPlanWithTrace(stories(), 'cuda');
    expect(trace.map((t) => t.pass).slice(-2)).toEqual(['assignBindings', 'chooseCudaKernels']);
    expect(program.kernels.every((k) => 'cuda' in k && (k as { cuda: { launches: unknown[] } }).cuda.launches.length > 0)).toBe(true);
    expect(trace.at(-2)!.program.kernels.some((k) => 'cuda' in k)).toBe(false);
  });

  it('are pure: the plan is not modified and the same plan gives identical IR', () => {
    const plan = stories();
    const before = JSON.stringify(plan);
    const first = dumpProgram(lowerPlan(plan, 'wgsl'));
    expect(JSON.stringify(plan)).toBe(before);
    expect(dumpProgram(lowerPlan(stories(), 'wgsl'))).toBe(first);
  });

  it('shrink the tile rows when a large rank would overflow workgroup memory', () => {
    const plan = syntheticPlan([{ inFeatures: 4096, outFeatures: 64, bits: 4, group: 16, adapter: { rank: 250, pooling: 'mean' } }]);
    const program = lowerPlan(plan, 'wgsl');
    const forward = program.kernels.find((k) => k.role === 'forward')!;
    expect(forward.tiling.tileRows).toBe(8);
    expect(forward.tiling.threadTile).toEqual({ rows: 1, columns: 4 });
    expect(forward.tiling.workgroupSize).toEqual([16, 8, 1]);
    expect(forward.tiling.workgroupBytes).toBeLessThanOrEqual(16384);
  });

  it('register-tile WGSL: 4 × 4 outputs an invocation, fewer rows per invocation first when the rank needs the memory', () => {
    const tilingOf = (rank: number) => lowerPlan(syntheticPlan([{ inFeatures: 4096, outFeatures: 4096, bits: 4, group: 32, adapter: { rank, pooling: 'mean' } }]), 'wgsl')
      .kernels.find((k) => k.role === 'forward')!.tiling;
    expect(tilingOf(16)).toMatchObject({ workgroupSize: [16, 16, 1], threadTile: { rows: 4, columns: 4 }, tileRows: 64, tileColumns: 64 });
    // LLaMA-7B's rank 64: 64 rows × 64 ranks of v would not fit beside the x and weight tiles.
    expect(tilingOf(64)).toMatchObject({ workgroupSize: [16, 16, 1], threadTile: { rows: 2, columns: 4 }, tileRows: 32, tileColumns: 64, workgroupBytes: 14336 });
    // CUDA's portable tiles stay one output per thread.
    const cuda = lowerPlan(stories(), 'cuda').kernels.find((k) => k.role === 'forward')!.tiling;
    expect(cuda).toMatchObject({ tileRows: 16, tileColumns: 16 });
    expect(cuda.threadTile).toBeUndefined();
  });

  it('lower the same program for CUDA with its own precision and limits', () => {
    const program = lowerPlan(stories(), 'cuda');
    expect(program.precision).toBe('bf16'); // target cuda { activation = bf16 }
    expect(program.limits.maxInvocationsPerWorkgroup).toBe(1024);
    expect(program.kernels.map((k) => k.name.replace(/_bf16$/, ''))).toEqual(lowerPlan(stories(), 'wgsl').kernels.map((k) => k.name.replace(/_f32$/, '')));
  });

  it('cover every test case shape: 3-bit codes straddle words, padding widens K, a large rank shrinks the tile', () => {
    const program = lowerPlan(syntheticPlan(KERNEL_CASES), 'wgsl');
    expect(program.kernels.find((k) => k.name === 'forward_k96_n40_b4_g2_qalora_r40_mean_f32')!.tiling).toMatchObject({ tileRows: 32, threadTile: { rows: 2, columns: 4 } });
    const threeBit = program.kernels.find((k) => k.name === 'pack_kp96_n40_b3_f32')!;
    expect(threeBit.weightLayout).toMatchObject({ wordRows: 9, codeMask: 7, codesStraddleWords: true });
    expect(program.configs.find((c) => c.inFeatures === 40)).toMatchObject({ paddedInFeatures: 48, groups: 3 });
  });
});
