// Types of report.mjs (plain JavaScript so the GPU machine's carried node runs it as is).
export interface Arch { readonly dim: number; readonly hidden: number; readonly kvDim: number; readonly vocab: number; readonly layers: number }
export const DATASHEET_BF16_TFLOPS: number;
export const LLAMA2_7B: Arch;
export const TARGETS: { readonly vsQaloraReference: number; readonly vsPeftLora: number; readonly mfu: number; readonly peakVsQaloraReference: number };
export function flopsPerToken(arch: Arch, seq: number): { linearParameters: number; linear: number; attention: number; total: number };
export function qaloraTrainable(arch: Arch, group?: number, rank?: number): number;
export function sampledPeakBytes(text: string): number | undefined;
export function profiledSplit(work: string, layers: number): { step_ms_by_class?: Record<string, number>; step_ms_by_kind?: Record<string, number>; step_split_how?: string };
export interface Row {
  system: 'peft-lora' | 'qalora-eager' | 'qalc';
  layers: number;
  tokens_per_s: number;
  peak_bytes?: number;
  peak_how?: string;
  flops_per_token: number;
  model_tflops: number;
  mfu_vs_measured?: number;
  mfu_vs_datasheet: number;
  [key: string]: unknown;
}
export interface Comparison {
  layers: number;
  vs_qalora_reference?: number;
  vs_peft_lora?: number;
  mfu_vs_measured?: number;
  mfu_vs_datasheet: number;
  peak_vs_qalora_reference?: number;
}
export interface Report {
  commit: string;
  seq: number;
  gemm_ceiling_tflops?: number;
  rows: Row[];
  comparisons: Comparison[];
  missing: string[];
  [key: string]: unknown;
}
export function stepGraphResult(summary: { stepGraph?: string } | undefined, steady: readonly { seconds: number; backward?: string }[]): Record<string, unknown>;
export function qalcResult(work: string, layers: number): Record<string, unknown> | undefined;
export function buildReport(work: string, options?: { seq?: number; arch?: Arch }): Report;
export function markdown(report: Report): string;
