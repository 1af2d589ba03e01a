// A reader's refusal of bad input, as tests check it: an input error by name (never a bug's
// TypeError or RangeError), whose message the test then matches.
import { expect } from 'vitest';

export function refusal(read: () => unknown, names: readonly string[] = ['CheckpointError', 'SafetensorsError']): string {
  try {
    read();
  } catch (e) {
    expect(names).toContain((e as Error).name);
    return (e as Error).message;
  }
  throw new Error('expected the input to be refused');
}
