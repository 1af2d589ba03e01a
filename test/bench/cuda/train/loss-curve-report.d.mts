// Types of loss-curve-report.mjs (a plain script of the device bench) for its test.
export interface StepLine { readonly step: number; readonly loss: number; readonly grad_norm: number; readonly seconds: number; readonly eval_loss?: number }
export interface CurveWindow { readonly from: number; readonly to: number; readonly loss: number; readonly heldOut: readonly number[] }
export interface LossCurve {
  readonly firstLast: number;
  readonly resumedFrom: number;
  readonly overlap: number;
  readonly differing: number;
  readonly finite: boolean;
  readonly windows: readonly CurveWindow[];
  readonly steps: number;
  readonly stepSeconds: number | undefined;
}
export function readSteps(path: string): StepLine[];
export function lossCurveReport(first: readonly StepLine[], resumed: readonly StepLine[], resumedFrom: number, window?: number): LossCurve;
