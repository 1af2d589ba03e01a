/** Training data qalc cannot use: names the file, and the line when there is one. */
export class DataError extends Error {
  constructor(readonly path: string, message: string, readonly line?: number) {
    super(`${path}${line === undefined ? '' : `:${line}`}: ${message}`);
    this.name = 'DataError';
  }
}
