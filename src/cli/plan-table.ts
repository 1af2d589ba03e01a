// `qalc inspect`: the plan as a table. Consecutive blocks whose projection is configured the
// same way share a row ("0..31"), so a 7B plan fits on a screen; --all gives one row per layer.
// planTable() computes the cells once; the text table here and the HTML page
// (src/cli/inspect-html/) lay them out.
import { printable } from '../diagnostics/printable.ts';
import type { LayerPlan, Plan } from '../plan/plan.ts';

const MIB = 1024 * 1024;

function configKey(l: LayerPlan): string {
  return JSON.stringify([l.projection, l.inFeatures, l.outFeatures, l.quant, l.adapter]);
}

function groupLayers(plan: Plan, all: boolean): LayerPlan[][] {
  if (all) return plan.layers.map((l) => [l]);
  // Rows grouped by projection (in q, k, v, … order) and configuration.
  const groups = new Map<string, LayerPlan[]>();
  for (const layer of plan.layers) {
    const key = configKey(layer);
    groups.set(key, [...(groups.get(key) ?? []), layer]);
  }
  const order = ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'lm_head'];
  return [...groups.values()]
    .sort((a, b) => order.indexOf(a[0]!.projection) - order.indexOf(b[0]!.projection) || (a[0]!.block ?? 0) - (b[0]!.block ?? 0));
}

function blocks(layers: readonly LayerPlan[]): string {
  if (layers[0]!.block === null) return '-';
  const indices = layers.map((l) => l.block!);
  const parts: string[] = [];
  for (let i = 0; i < indices.length; ) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === indices[j]! + 1) j++;
    parts.push(i === j ? `${indices[i]}` : `${indices[i]}..${indices[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

export interface PlanTableRow {
  /** The plan layers the row stands for, in plan order. */
  readonly layers: readonly LayerPlan[];
  readonly cells: readonly string[];
}

export interface PlanTable {
  /** `spec NAME — model: dim …`. */
  readonly title: string;
  readonly header: readonly string[];
  /** Columns from this index on are numbers (right-aligned). */
  readonly numericFrom: number;
  readonly rows: readonly PlanTableRow[];
  /** The totals under the table, one line each, already aligned. */
  readonly totals: readonly string[];
}

export function planTable(plan: Plan, all = false): PlanTable {
  // Small models need more decimals to show anything; one precision per table keeps columns aligned.
  const decimals = plan.totals.modelFp16Bytes < 64 * MIB ? 4 : 2;
  const mib = (bytes: number) => (bytes / MIB).toFixed(decimals);
  const rows = groupLayers(plan, all).map((layers): PlanTableRow => {
    const l = layers[0]!;
    const total = (f: (s: LayerPlan['sizes']) => number) => mib(layers.reduce((t, x) => t + f(x.sizes), 0));
    const quant = l.quant;
    return {
      layers,
      cells: [
        blocks(layers),
        l.projection,
        `${l.inFeatures}×${l.outFeatures}`,
        quant ? `${quant.bits}${quant.symmetric ? 's' : ''}` : 'fp16',
        quant ? `${quant.group}${quant.pad === 'zero' && quant.paddedInFeatures !== l.inFeatures ? ` (pad ${quant.paddedInFeatures})` : ''}` : '-',
        l.adapter ? `${l.adapter.kind} r${l.adapter.rank}` : '-',
        total((s) => s.weightBytes),
        total((s) => s.scaleBytes),
        total((s) => s.zeroBytes),
        total((s) => s.adapterBytes),
        total((s) => s.fp16Bytes),
      ],
    };
  });
  const t = plan.totals;
  const a = plan.model.architecture;
  return {
    title: `spec ${plan.spec} — ${plan.model.preset ?? plan.model.checkpoint?.path ?? 'written-out architecture'}: dim ${a.dim}, hidden ${a.hiddenDim}, ${a.layers} layers, ${a.heads} heads (${a.kvHeads} kv), vocab ${a.vocab}, RoPE θ ${a.ropeTheta}, RMSNorm ε ${a.rmsNormEps}`,
    header: ['layers', 'proj', 'K×N', 'bits', 'group', 'adapter', 'weights MiB', 'scales MiB', 'zeros MiB', 'adapter MiB', 'fp16 MiB'],
    numericFrom: 6,
    rows,
    totals: [
      `linear layers   ${mib(t.linearQuantizedBytes).padStart(10)} MiB quantized   vs ${mib(t.linearFp16Bytes).padStart(10)} MiB fp16  (${(t.linearFp16Bytes / t.linearQuantizedBytes).toFixed(2)}×)`,
      `adapters        ${mib(t.adapterBytes).padStart(10)} MiB             ${t.adapterParams.toLocaleString('en-US')} trainable parameters`,
      `other (fp16)    ${mib(t.otherBytes).padStart(10)} MiB             embeddings, norms${a.tiedEmbeddings ? '' : ', lm_head unless planned'}`,
      `whole model     ${mib(t.modelQuantizedBytes + t.adapterBytes).padStart(10)} MiB with adapters  vs ${mib(t.modelFp16Bytes).padStart(10)} MiB fp16`,
      storedAs(plan),
    ],
  };
}

/** What the sizes above count, and where qalc's own merged file differs from them. */
function storedAs(plan: Plan): string {
  const of = (f: (q: NonNullable<LayerPlan['quant']>) => string) => [...new Set(plan.layers.flatMap((l) => (l.quant ? [f(l.quant)] : [])))].join('/');
  const scales = of((q) => q.scaleDtype), zeros = of((q) => (q.zeroStorage === 'int' ? 'packed integer' : q.zeroStorage));
  if (!scales) return 'stored as       nothing quantized';
  return `stored as       GPTQ-packed codes, ${scales} scales (the values trained with), ${zeros} zeros; the file qalc merge writes holds scales, zeros, embeddings and norms in fp32 (lossless)`;
}

export function renderPlanTable(plan: Plan, all = false): string {
  const table = planTable(plan, all);
  const body = table.rows.map((r) => r.cells);
  const widths = table.header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i >= table.numericFrom ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [printable(table.title), '', line(table.header), line(widths.map((w) => '─'.repeat(w))), ...body.map(line), '', ...table.totals];
  return out.join('\n') + '\n';
}
