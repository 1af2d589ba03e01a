// One process at a time writes a run folder. `run.lock` holds the writer's pid, host and verb;
// it is created with O_EXCL, so of two processes starting at once exactly one gets it. A lock
// whose process is gone (killed, crashed) is stale: the next writer takes it over, saying so.
// The lock is removed when its holder exits. A signal (Ctrl-C included) leaves it behind on
// purpose: a JS handler would only run once the training loop yields, which it rarely does, and
// Ctrl-C must stop a run at once; the next writer finds the lock stale and takes it over.
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'run.lock';

interface LockRecord {
  readonly pid: number;
  readonly host: string;
  readonly verb: string;
  readonly since: string;
}

/** Another process is writing the run folder. */
export class RunLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunLockedError';
  }
}

function readLock(path: string): LockRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockRecord>;
    return typeof record.pid === 'number' ? (record as LockRecord) : undefined;
  } catch {
    return undefined; // gone since, or cut short by a kill while it was written
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** Who holds the folder's lock, if a live process does (for readers that only warn). */
export function runLockHolder(dir: string): string | undefined {
  const record = readLock(join(dir, LOCK_FILE));
  if (!record || (record.host === hostname() && !alive(record.pid))) return undefined;
  return describe(record);
}

export interface RunLock {
  release(): void;
}

/**
 * Takes the run folder's lock for `verb`, creating the folder; `notice` hears about a stale
 * lock taken over. Throws when a live process holds it.
 */
export function lockRunFolder(dir: string, verb: string, notice: (text: string) => void): RunLock {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const record: LockRecord = { pid: process.pid, host: hostname(), verb, since: new Date().toISOString() };
  // Written whole beside it, then linked into place: link fails if the lock exists, and a
  // reader never sees a lock without its pid.
  const draft = `${path}.${process.pid}`;
  writeFileSync(draft, JSON.stringify(record) + '\n');
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(draft, path);
        return holding(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = readLock(path);
      const here = holder?.host === hostname();
      if (holder && (!here || alive(holder.pid))) {
        throw new RunLockedError(`${dir} is in use by ${describe(holder)}: wait for it to finish, or choose another --out ` +
          `(if that process is ${here ? 'not qalc' : 'gone'}, delete ${path})`);
      }
      // Its process is gone. Of two processes taking it over at once, one link fails and that
      // one finds the other alive.
      notice(`note: ${path} was left by ${holder ? `${describe(holder)}, which is no longer running` : 'a process that did not finish writing it'}: taking it over`);
      rmSync(path, { force: true });
    }
    throw new RunLockedError(`${dir}: could not take ${path}: other processes keep taking it`);
  } finally {
    rmSync(draft, { force: true });
  }
}

function describe(record: LockRecord): string {
  return `qalc ${record.verb} (pid ${record.pid}${record.host === hostname() ? '' : ` on ${record.host}`}, since ${record.since})`;
}

function holding(path: string): RunLock {
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    // Only our own lock: another process may have taken it over had we been thought gone.
    if (readLock(path)?.pid === process.pid) rmSync(path, { force: true });
    process.off('exit', release);
  };
  process.on('exit', release);
  return { release };
}
