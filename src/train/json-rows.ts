// Rows of JSON training data: a JSON array of objects, or JSON Lines (one object a line, blank
// lines skipped). Each row keeps where it came from, so that a bad one is named by its line.
import { DataError } from './data-error.ts';

export interface JsonRow {
  readonly value: unknown;
  /** The line of a JSON Lines row; undefined in a JSON array, whose rows are named by index. */
  readonly line?: number;
  readonly index: number;
}

/** A JSON array when the file starts with '[', else JSON Lines. */
export function parseJsonRows(path: string, text: string): JsonRow[] {
  const body = text.replace(/^\uFEFF/, '');
  if (body.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (e) {
      throw new DataError(path, `not valid JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(parsed)) throw new DataError(path, 'expected a JSON array of rows, or JSON Lines');
    return parsed.map((value: unknown, index) => ({ value, index }));
  }
  const rows: JsonRow[] = [];
  body.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new DataError(path, `not valid JSON (a JSON Lines file has one JSON object a line): ${(e as Error).message}`, i + 1);
    }
    rows.push({ value, line: i + 1, index: rows.length });
  });
  return rows;
}

/** A row's own error: at its line in JSON Lines, by its index in an array. */
export function rowError(path: string, row: JsonRow, message: string): DataError {
  return row.line === undefined ? new DataError(path, `example ${row.index} ${message}`) : new DataError(path, `this row ${message}`, row.line);
}
