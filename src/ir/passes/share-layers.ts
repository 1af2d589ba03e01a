// The first two passes: group the plan's layers into distinct configurations, then make one
// kernel per (role, the configuration fields that role reads). Everything later refines these.
import type { KernelRole, LayerPlan, Plan } from '../../plan/plan.ts';
import type { KernelIR, KernelProgram, LayerConfig, ScalarType, Target, TargetLimits } from '../kernel-ir.ts';

export const TARGET_LIMITS: Readonly<Record<Target, TargetLimits>> = {
  // WebGPU's guaranteed minimums, so every adapter runs the kernels.
  wgsl: { maxInvocationsPerWorkgroup: 256, maxWorkgroupBytes: 16384, maxStorageBuffersPerStage: 8, lockstepWidth: 8 },
  cuda: { maxInvocationsPerWorkgroup: 1024, maxWorkgroupBytes: 48 * 1024, maxStorageBuffersPerStage: 64, lockstepWidth: 32 },
};

/** Roles that have a kernel here; dense layers and plain LoRA adapters come later. */
/** The roles a quantized layer's kernels are lowered to; each kernel is named `<role>_<shape>`. */
export const LOWERED_ROLES: readonly KernelRole[] = ['quantize', 'pack', 'dequantize', 'forward', 'decode', 'backward_data', 'adapter_grad', 'merge'];

export interface LowerOptions {
  /** Overrides the plan's target precision (e.g. emit the f16 WGSL variant on request). */
  readonly precision?: ScalarType;
}

/** The activation type a target runs in when the caller does not override it. */
export function planPrecision(plan: Plan, target: Target): ScalarType {
  if (target === 'wgsl') return plan.targets['wgsl']?.['precision'] === 'f16' ? 'f16' : 'f32';
  return plan.targets['cuda']?.['activation'] === 'fp16' ? 'f16' : 'bf16';
}

function configOf(layer: LayerPlan): Omit<LayerConfig, 'layers' | 'sources'> | string {
  const { quant, adapter } = layer;
  if (!quant) return `${layer.name}: not quantized (dense kernels are not lowered yet)`;
  if (adapter && adapter.kind !== 'qalora') return `${layer.name}: adapter kind ${adapter.kind} is not lowered yet`;
  const adapterConfig = adapter
    ? {
        kind: 'qalora' as const,
        rank: adapter.rank,
        pooling: adapter.pooling ?? 'mean',
        poolingFactor: (adapter.pooling ?? 'mean') === 'mean' ? 1 / quant.group : 1,
        dropout: adapter.dropout > 0,
      }
    : null;
  const base = {
    inFeatures: layer.inFeatures,
    paddedInFeatures: quant.paddedInFeatures,
    outFeatures: layer.outFeatures,
    bits: quant.bits,
    group: quant.group,
    groups: quant.groups,
    symmetric: quant.symmetric,
    adapter: adapterConfig,
  };
  return { id: configId(base), ...base };
}

/** From numbers and enums only, so it is safe in identifiers and file names. */
export function configId(c: Omit<LayerConfig, 'id' | 'layers' | 'sources'>): string {
  const padded = c.paddedInFeatures !== c.inFeatures ? `p${c.paddedInFeatures}` : '';
  const adapter = c.adapter ? `_qalora_r${c.adapter.rank}_${c.adapter.pooling}${c.adapter.dropout ? '_dropout' : ''}` : '';
  return `k${c.inFeatures}${padded}_n${c.outFeatures}_b${c.bits}_g${c.group}${c.symmetric ? '_sym' : ''}${adapter}`;
}

/** Pass 1: one LayerConfig per distinct configuration; identical layers share it. */
export function shareIdenticalLayers(plan: Plan, target: Target, options: LowerOptions = {}): KernelProgram {
  const configs = new Map<string, LayerConfig>();
  const skipped: string[] = [];
  for (const layer of plan.layers) {
    const config = configOf(layer);
    if (typeof config === 'string') {
      skipped.push(config);
      continue;
    }
    const seen = configs.get(config.id);
    configs.set(config.id, {
      ...config,
      layers: [...(seen?.layers ?? []), layer.name],
      sources: [...new Set([...(seen?.sources ?? []), ...layer.sources])],
    });
  }
  return {
    target,
    precision: options.precision ?? planPrecision(plan, target),
    limits: TARGET_LIMITS[target],
    spec: plan.spec,
    specFile: plan.specFile,
    configs: [...configs.values()],
    kernels: [],
    skipped,
  };
}

/** The part of a configuration's id that a role's code depends on. */
export function roleKey(role: KernelRole, c: LayerConfig): string {
  const padded = c.paddedInFeatures !== c.inFeatures ? `p${c.paddedInFeatures}` : '';
  const a = c.adapter;
  switch (role) {
    case 'quantize':
      return `kp${c.paddedInFeatures}_n${c.outFeatures}_b${c.bits}_g${c.group}${c.symmetric ? '_sym' : '_asym'}`;
    case 'pack':
      return `kp${c.paddedInFeatures}_n${c.outFeatures}_b${c.bits}`;
    case 'dequantize':
      return `kp${c.paddedInFeatures}_n${c.outFeatures}_b${c.bits}_g${c.group}`;
    case 'backward_data':
      return `k${c.inFeatures}${padded}_n${c.outFeatures}_b${c.bits}_g${c.group}${a ? `_unpool_${a.pooling}` : ''}`;
    case 'adapter_grad':
      return `l${c.groups}_n${c.outFeatures}_r${a!.rank}${a!.dropout ? '_dropout' : ''}`;
    case 'merge':
      return `l${c.groups}_n${c.outFeatures}_g${c.group}_r${a!.rank}_${a!.pooling}`;
    default:
      return c.id;
  }
}

function rolesOf(c: LayerConfig): KernelRole[] {
  return LOWERED_ROLES.filter((role) => (role === 'adapter_grad' || role === 'merge' ? c.adapter !== null : true));
}

/** Pass 2: one kernel per distinct (role, role key), in config order then role order. */
export function instantiateRoles(program: KernelProgram): KernelProgram {
  const kernels = new Map<string, KernelIR>();
  for (const config of program.configs) {
    for (const role of rolesOf(config)) {
      const name = `${role}_${roleKey(role, config)}_${program.precision}`;
      const seen = kernels.get(name);
      kernels.set(name, {
        name,
        role,
        configIds: [...(seen?.configIds ?? []), config.id],
        layers: [...(seen?.layers ?? []), ...config.layers],
        sources: [...new Set([...(seen?.sources ?? []), ...config.sources])],
      });
    }
  }
  return { ...program, kernels: [...kernels.values()] };
}

export function configOfKernel(program: KernelProgram, kernel: KernelIR): LayerConfig {
  const config = program.configs.find((c) => c.id === kernel.configIds[0]);
  if (!config) throw new Error(`kernel ${kernel.name} refers to an unknown configuration ${kernel.configIds[0]}`);
  return config;
}
