import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // forks, not threads: the tracer of a ptraced task must be one OS thread of one process
    pool: 'forks',
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**'],
    globalSetup: ['./lib/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
