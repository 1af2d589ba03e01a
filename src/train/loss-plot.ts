// The loss curve as a small standalone SVG: training loss per step, held-out loss where it was
// measured. No plotting library: two polylines, axes and a few labels.

export interface LossPoint {
  readonly step: number;
  readonly loss: number;
}

const WIDTH = 720;
const HEIGHT = 400;
const MARGIN = { left: 60, right: 20, top: 30, bottom: 45 };

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function lossCurveSvg(title: string, train: readonly LossPoint[], held: readonly LossPoint[]): string {
  const all = [...train, ...held].filter((p) => Number.isFinite(p.loss));
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  const lo = Math.min(...all.map((p) => p.loss), Infinity);
  const hi = Math.max(...all.map((p) => p.loss), -Infinity);
  const [yMin, yMax] = all.length === 0 ? [0, 1] : lo === hi ? [lo - 0.5, hi + 0.5] : [lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)];
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (step: number) => (MARGIN.left + (step / maxStep) * plotW).toFixed(1);
  const y = (loss: number) => (MARGIN.top + (1 - (loss - yMin) / (yMax - yMin)) * plotH).toFixed(1);
  const line = (points: readonly LossPoint[], colour: string) =>
    points.length === 0 ? '' : `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${points.filter((p) => Number.isFinite(p.loss)).map((p) => `${x(p.step)},${y(p.loss)}`).join(' ')}"/>`;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const loss = yMin + f * (yMax - yMin);
    return `<text x="${MARGIN.left - 6}" y="${y(loss)}" text-anchor="end" dominant-baseline="middle">${loss.toFixed(2)}</text>` +
      `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y(loss)}" y2="${y(loss)}" stroke="#ddd"/>`;
  }).join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="18" text-anchor="middle" font-size="14">${escape(title)}</text>`,
    ticks,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${HEIGHT - MARGIN.bottom}" stroke="black"/>`,
    `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${HEIGHT - MARGIN.bottom}" y2="${HEIGHT - MARGIN.bottom}" stroke="black"/>`,
    `<text x="${MARGIN.left}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle">0</text>`,
    `<text x="${WIDTH - MARGIN.right}" y="${HEIGHT - MARGIN.bottom + 16}" text-anchor="middle">${maxStep}</text>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 8}" text-anchor="middle">step</text>`,
    `<text x="14" y="${MARGIN.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 14 ${MARGIN.top + plotH / 2})">loss (nats/token)</text>`,
    line(train, '#1f77b4'),
    line(held, '#d62728'),
    `<text x="${WIDTH - MARGIN.right - 150}" y="${MARGIN.top + 14}" fill="#1f77b4">— training</text>`,
    `<text x="${WIDTH - MARGIN.right - 150}" y="${MARGIN.top + 30}" fill="#d62728">— held out</text>`,
    '</svg>',
    '',
  ].join('\n');
}
