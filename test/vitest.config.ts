import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The config lives under test/ to keep the top level to the project's own folders;
// the root is the repository so paths in tests read from there.
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
  },
});
