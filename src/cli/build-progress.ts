// What `qalc compile` says while nvcc runs: on a cold cache the example specs take minutes of
// compiler time. On a terminal one line is redrawn; elsewhere (CI, a log file) a line is
// printed at every tenth of the work, so a log never holds hundreds of them.
import type { BuildProgress } from '../backends/cuda/nvcc.ts';

export function nvccProgress(stream: NodeJS.WriteStream = process.stderr): (progress: BuildProgress) => void {
  const tty = stream.isTTY === true;
  let started = 0;
  let shownTenth = 0;
  return ({ done, cached, total, jobs }) => {
    if (done === 0) {
      started = performance.now();
      stream.write(`nvcc: building ${total} fatbins (each kernel for each architecture), ${jobs} at a time; --no-build skips this\n`);
      return;
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    const line = `nvcc: ${done}/${total} fatbins done (${cached} from the cache), ${seconds} s`;
    if (tty) {
      stream.write(`\r${line}\x1b[K${done === total ? '\n' : ''}`);
      return;
    }
    const tenth = Math.floor((done * 10) / total);
    if (tenth > shownTenth || done === 1) {
      shownTenth = tenth;
      stream.write(`${line}\n`);
    }
  };
}
