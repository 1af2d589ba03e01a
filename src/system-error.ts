// Errors from the operating system (a file that is not there, a folder where a file should be,
// a disk that is full) are about the user's machine and files, not bugs in qalc: they are said
// in words, naming the path, and exit with status 1.

/** Codes that mean "your files or your machine", never "qalc did something wrong". */
const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a folder',
  ENOTDIR: 'a part of the path is not a folder',
  EEXIST: 'it already exists',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
  EBUSY: 'the file is busy',
  EIO: 'input/output error',
};

export function isSystemError(e: unknown): e is NodeJS.ErrnoException & { code: string } {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).code! in REASONS;
}

/** "no such file", "it is a folder", … or the code itself for anything else. */
export function systemErrorReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === undefined ? String(e) : (REASONS[code] ?? code);
}

/** "cannot mkdir 'README.md': it already exists" */
export function describeSystemError(e: NodeJS.ErrnoException): string {
  const dest = (e as { dest?: string }).dest;
  const what = e.path === undefined ? '' : ` '${e.path}'${dest === undefined ? '' : ` to '${dest}'`}`;
  return `cannot ${e.syscall ?? 'use'}${what}: ${systemErrorReason(e)}`;
}
