/**
 * The Standard Webhooks retry schedule: a delivery is tried at once, then after 5 s, 5 min, 30 min,
 * 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (each after the previous try), then given up.
 */
export const RETRY_SCHEDULE_MS: readonly number[] = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 50_400_000, 72_000_000, 86_400_000];

/** The wait before try `attemptsMade + 1` (BullMQ's count of tries made), scaled for tests. */
export function retryDelayMs(attemptsMade: number, scale = 1): number {
  const d = RETRY_SCHEDULE_MS[Math.min(Math.max(attemptsMade - 1, 0), RETRY_SCHEDULE_MS.length - 1)]!;
  return Math.round(d * scale);
}

/** Tries in all: the first, and one per step of the schedule. */
export const DELIVERY_ATTEMPTS = RETRY_SCHEDULE_MS.length + 1;
