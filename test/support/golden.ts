// Golden files: the expected output of the compiler, committed and reviewed like code.
// Run the tests with UPDATE_GOLDEN=1 to rewrite them, then read the diff.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { expect } from 'vitest';

export const UPDATE_GOLDEN = process.env.UPDATE_GOLDEN === '1';

export function expectGolden(path: string, actual: string): void {
  if (UPDATE_GOLDEN) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  if (!existsSync(path)) throw new Error(`golden file ${path} is missing: run the tests with UPDATE_GOLDEN=1 to create it`);
  expect(actual, `${path} is stale: run the tests with UPDATE_GOLDEN=1 and review the diff`).toBe(readFileSync(path, 'utf8'));
}
