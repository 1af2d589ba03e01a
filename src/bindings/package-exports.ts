// What generated code imports from qalc by package name (`import … from 'qalc/bindings'`,
// package.json "exports"), so a generated trainer runs wherever qalc is installed, never by a
// relative path into node_modules. Generated model.mts and kernels.mts take only types from
// here; train.mts takes runTrainer.
export { runTrainer, TRAINER_USAGE } from './run-trainer.ts';
export type { LayerPlan, Plan } from '../plan/plan.ts';
export type { Architecture } from '../model/architecture.ts';
export type * from './kernel-descriptor.ts';
