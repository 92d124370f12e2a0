import type { CpuFigures } from '../analysis/results.ts';

/**
 * Section 13's "before" column: the CPU figures of the code before issue "Lean hot paths" cut
 * anything (the Sentinel work of c5a1a06 without this page's two cuts; its own commit was not
 * kept), taken once with `npm run bench -- --only cpu` (60,000 payments at
 * 1,000/s) on the bench machine and kept here, because a bench run measures only the working
 * tree. docs/perf.md has the run they come from.
 */
export const CPU_BEFORE: { label: string; figures: CpuFigures | null } = {
  label: 'before the cuts',
  figures: { payments: 60_000, apiMs: 0.47, workerMs: 1.498, redisMs: 0.88, commands: 132.4, scripts: 7.2, p50: 8.6, p99: 1_197 },
};
