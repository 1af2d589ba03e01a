// One export into one folder, all or nothing: the format writes into a temporary sibling folder,
// export.json (what, from where, the notices and measured numbers) is written last, and the
// folder is renamed into place. A failure at any point — a full disk, a layer the format cannot
// hold — removes the temporary folder, so `out` either holds a whole export or does not exist.
// An `out` that already holds an export, or anything else, is refused: nothing is overwritten.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ExportError, type ExportFormat, type ExportOptions, type ExportSource } from './formats.ts';

export const EXPORT_RECORD = 'export.json';
export const EXPORT_RECORD_FORMAT = 'qalc-export-1';

export interface ExportResult {
  readonly out: string;
  readonly files: readonly string[];
  readonly notices: readonly string[];
  /** What the format measured (also in export.json). */
  readonly report?: Readonly<Record<string, unknown>>;
}

/** Why `out` cannot receive an export, or undefined when it is free (absent or an empty folder). */
export function occupiedReason(out: string): string | undefined {
  const stat = statSync(out, { throwIfNoEntry: false });
  if (!stat) return undefined;
  if (!stat.isDirectory()) return `${out} exists and is not a folder`;
  const record = join(out, EXPORT_RECORD);
  if (existsSync(record)) {
    let what = 'an export';
    try {
      const parsed = JSON.parse(readFileSync(record, 'utf8')) as { format?: string; source?: string };
      what = `a ${parsed.format} export of ${parsed.source}`;
    } catch { /* the record is damaged: still an export */ }
    return `${out} already holds ${what} (${EXPORT_RECORD}): remove it, or choose another --out`;
  }
  if (readdirSync(out).length > 0) return `${out} is not empty: an export goes into a new or empty folder`;
  return undefined;
}

export async function writeExport(out: string, format: ExportFormat, source: ExportSource, options: ExportOptions = {}): Promise<ExportResult> {
  if (format.unavailable) throw new ExportError(`--format ${format.name}: ${format.unavailable}`);
  if (format.needs === 'adapters' && !source.adapters) {
    throw new ExportError(`--format ${format.name} exports the adapters alone, and ${source.description} has them folded into its zeros: give the spec whose run trained them`);
  }
  const occupied = occupiedReason(out);
  if (occupied) throw new ExportError(occupied);
  mkdirSync(dirname(out), { recursive: true });
  const temporary = join(dirname(out), `.${basename(out)}.${process.pid}.partial`);
  rmSync(temporary, { recursive: true, force: true });
  mkdirSync(temporary);
  try {
    const written = await format.write(temporary, source, options);
    writeFileSync(join(temporary, EXPORT_RECORD), JSON.stringify({
      format: format.name, record: EXPORT_RECORD_FORMAT, source: source.description, spec: source.merged.spec,
      files: written.files, notices: written.notices, ...(written.report ? { report: written.report } : {}),
    }, null, 2) + '\n');
    if (existsSync(out)) rmdirSync(out); // empty, checked above
    renameSync(temporary, out);
    return { out, files: [...written.files, EXPORT_RECORD], notices: written.notices, ...(written.report ? { report: written.report } : {}) };
  } catch (e) {
    rmSync(temporary, { recursive: true, force: true });
    throw e;
  }
}
