// Types of report.mjs (plain JavaScript so the GPU machine's carried node runs it as is).
export interface Arch { readonly dim: number; readonly hidden: number; readonly kvDim: number; readonly vocab: number; readonly layers: number }
export const LLAMA2_7B: Arch;
export const BANDWIDTH: { readonly datasheet: number; readonly measuredCopy: number };
export const TARGET: { readonly tokensPerSecond: number; readonly rooflineFraction: number };
export function bytesPerToken(arch: Arch, group?: number, rank?: number): { mergedW4: number; qalcToday: number; qalcMerged: number; bf16: number };
export interface QalcRun {
  tokens?: number; promptTokens?: number; seconds?: number; tokensPerSecond?: number; warmUpForwards?: number; warmUpSeconds?: number;
  decodeStep?: DecodeStep;
  peakBytes?: number; profile?: string; backend?: string; failed?: string;
}
export type DecodeStep = { nodes: number; capturedAt: number; replays: number } | { launched: string };
export function parseDecodeStep(text: string): DecodeStep | undefined;
export function parseQalcLog(text: string | undefined): QalcRun | undefined;
export interface Report {
  commit: string;
  bytesPerToken: { mergedW4: number; qalcToday: number; qalcMerged: number; bf16: number };
  roofline: Record<'mergedW4' | 'qalcToday' | 'qalcMerged' | 'bf16', { datasheet: number; measuredCopy: number }>;
  stories: { ok: boolean; reason?: string; cpu?: string; cuda?: string };
  qalc: QalcRun | undefined;
  noGraph: QalcRun | undefined;
  merged: QalcRun | undefined;
  profiled: QalcRun | undefined;
  transformers: Record<string, unknown> | undefined;
  checks: { what: string; ok: boolean }[];
  target: { tokensPerSecond: number; rooflineFraction: number; met: boolean };
}
export function buildReport(work: string): Report;
export function markdown(report: Report): string;
