import { defineConfig } from 'vitest/config';

/**
 * Two groups, run one after the other:
 * - `unit`: unit and integration tests next to the code (real Redis, simulator on port 0), in parallel;
 * - `system`: tests in test/ that start real processes and measure the PG's arrival log. They run
 *   one file at a time, alone, because a 2-core machine shared with parallel files would measure
 *   the neighbours rather than Sluice.
 */
export default defineConfig({
  test: {
    // The second repeats each failure on stdout after the summary (test/support/failures-reporter.ts).
    reporters: ['default', './test/support/failures-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['apps/*/src/**/*.test.ts', 'packages/*/src/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'system',
          include: ['test/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
