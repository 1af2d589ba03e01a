// The progress line of a training run: step, loss, tokens/s, learning rate, ETA. On a terminal
// it redraws one line; elsewhere (CI, a log file) it prints a line every `every` steps.

export interface ProgressUpdate {
  readonly step: number;
  readonly steps: number;
  readonly loss: number;
  readonly lr: number;
  readonly tokensPerSecond: number;
  readonly secondsLeft: number;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

export class Progress {
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly every = 10) {
    this.tty = stream.isTTY === true;
  }

  update(u: ProgressUpdate): void {
    const width = 24;
    const filled = Math.round((u.step / u.steps) * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const line = `${bar} step ${u.step}/${u.steps}  loss ${u.loss.toFixed(4)}  ${Math.round(u.tokensPerSecond)} tok/s  lr ${u.lr.toExponential(2)}  ETA ${duration(u.secondsLeft)}`;
    if (this.tty) this.stream.write(`\r${line}\x1b[K`);
    else if (u.step % this.every === 0 || u.step === u.steps) this.stream.write(`${line}\n`);
  }

  message(text: string): void {
    this.stream.write(this.tty ? `\r\x1b[K${text}\n` : `${text}\n`);
  }

  done(): void {
    if (this.tty) this.stream.write('\n');
  }
}
