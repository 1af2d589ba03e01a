// The loss curve as a small standalone SVG: training loss per step, held-out loss where it was
// measured (a marker on each point: there are few, and the line between them is no measurement).
// Axes are labelled at round values, as a person would draw them. No plotting library: two
// polylines, circles, axes and labels.
import { escapeHtml } from '../backends/escape.ts';

export interface LossPoint {
  readonly step: number;
  readonly loss: number;
}

const WIDTH = 720;
const HEIGHT = 400;
const MARGIN = { left: 60, right: 20, top: 30, bottom: 45 };

/** A round spacing (1, 2, 2.5 or 5 times a power of ten) giving about `count` intervals over `range`. */
export function tickSpacing(range: number, count: number): number {
  const raw = range / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 2.5, 5, 10].find((m) => m * power >= raw * (1 - 1e-9)) ?? 10) * power;
}

/** Ticks every `spacing` from lo to hi, computed as multiples so they print exactly. */
function ticks(lo: number, hi: number, spacing: number): number[] {
  const out: number[] = [];
  for (let k = Math.ceil(lo / spacing - 1e-9); k * spacing <= hi + spacing * 1e-9; k++) out.push(k * spacing);
  return out;
}

function label(value: number, spacing: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(spacing) + 1e-9) + (Math.abs(spacing / 10 ** Math.floor(Math.log10(spacing)) - 2.5) < 1e-9 ? 1 : 0));
  return value.toFixed(decimals);
}

export function lossCurveSvg(title: string, train: readonly LossPoint[], held: readonly LossPoint[]): string {
  const finite = (points: readonly LossPoint[]) => points.filter((p) => Number.isFinite(p.loss));
  const all = [...finite(train), ...finite(held)];
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const lo = all.length === 0 ? 0 : Math.min(...all.map((p) => p.loss));
  const hi = all.length === 0 ? 1 : Math.max(...all.map((p) => p.loss));
  const ySpacing = tickSpacing(hi > lo ? hi - lo : Math.max(1, Math.abs(lo)), 6);
  // The axis runs from the round value below the lowest loss to the one above the highest.
  const yMin = Math.floor(lo / ySpacing + 1e-9) * ySpacing;
  const yMax = Math.max(yMin + ySpacing, Math.ceil(hi / ySpacing - 1e-9) * ySpacing);
  const xSpacing = Math.max(1, tickSpacing(maxStep, 8));
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (step: number) => (MARGIN.left + (step / maxStep) * plotW).toFixed(1);
  const y = (loss: number) => (MARGIN.top + (1 - (loss - yMin) / (yMax - yMin)) * plotH).toFixed(1);
  const line = (points: readonly LossPoint[], colour: string) =>
    points.length === 0 ? '' : `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${points.map((p) => `${x(p.step)},${y(p.loss)}`).join(' ')}"/>`;
  const yTicks = ticks(yMin, yMax, ySpacing).map((loss) =>
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(loss)}" y2="${y(loss)}" stroke="#ddd"/>` +
    `<text class="y-tick" x="${MARGIN.left - 6}" y="${y(loss)}" text-anchor="end" dominant-baseline="middle">${label(loss, ySpacing)}</text>`).join('\n');
  const xTicks = ticks(0, maxStep, xSpacing).map((step) =>
    `<line x1="${x(step)}" x2="${x(step)}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom + 4}" stroke="black"/>` +
    `<text class="x-tick" x="${x(step)}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle">${label(step, xSpacing)}</text>`).join('\n');
  const markers = finite(held).map((p) =>
    `<circle class="held-out" cx="${x(p.step)}" cy="${y(p.loss)}" r="3.5" fill="#d62728"><title>step ${p.step}: held-out loss ${p.loss.toFixed(4)}</title></circle>`).join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="18" text-anchor="middle" font-size="14">${escapeHtml(title)}</text>`,
    yTicks,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}" stroke="black"/>`,
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom}" stroke="black"/>`,
    xTicks,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 8}" text-anchor="middle">step</text>`,
    `<text x="14" y="${MARGIN.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 14 ${MARGIN.top + plotH / 2})">loss (nats/token)</text>`,
    line(finite(train), '#1f77b4'),
    line(finite(held), '#d62728'),
    markers,
    `<text x="${WIDTH - MARGIN.right - 150}" y="${MARGIN.top + 14}" fill="#1f77b4">— training</text>`,
    `<text x="${WIDTH - MARGIN.right - 150}" y="${MARGIN.top + 30}" fill="#d62728">—● held out</text>`,
    '</svg>',
    '',
  ].join('\n');
}
