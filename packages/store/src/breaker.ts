/**
 * The PG circuit breaker, in one module: its settings (from the one parsed config), its states,
 * and how its stored state is read. Every process shares it through Redis. Its rules run where
 * its state changes, atomically: `lua/breaker-record.lua` counts each PG call's result and opens
 * or closes it; `lua/guard.lua` holds calls back while it is open and lets the probes through.
 * Whether a result is a PG failure is the domain's (`isPgFailure`). The worker, the API's
 * readiness check, its metrics and its dashboard all read it through here.
 */
import type { Config } from '@sluice/config';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';

/** When the breaker opens, for how long, and how it probes and closes. */
export interface BreakerSettings {
  consecutiveFailures: number;
  failureRate: number;
  minCalls: number;
  windowMs: number;
  openMs: number;
  probeIntervalMs: number;
  closeAfter: number;
}

/** The breaker's states. */
export type BreakerState = 'closed' | 'open' | 'half_open';

/** The breaker as stored: its state, since when (ms), and why it last opened. */
export interface BreakerView {
  state: BreakerState;
  since: number | null;
  reason: string | null;
}

/** The breaker's settings from the parsed config (the BREAKER_* variables). */
export function breakerSettingsOf(c: Config): BreakerSettings {
  return {
    consecutiveFailures: c.BREAKER_CONSECUTIVE_FAILURES,
    failureRate: c.BREAKER_FAILURE_RATE,
    minCalls: c.BREAKER_MIN_CALLS,
    windowMs: c.BREAKER_WINDOW_MS,
    openMs: c.BREAKER_OPEN_MS,
    probeIntervalMs: c.BREAKER_PROBE_INTERVAL_MS,
    closeAfter: c.BREAKER_CLOSE_AFTER,
  };
}

/** The hash fields a reader asks for (in a pipeline of its own, if it likes), read by {@link breakerViewOf}. */
export const BREAKER_FIELDS = ['state', 'since', 'reason'] as const;

/** The view of the stored fields, in {@link BREAKER_FIELDS} order. A breaker never written is closed. */
export function breakerViewOf(fields: readonly (string | null)[]): BreakerView {
  const [state, since, reason] = fields;
  return { state: (state as BreakerState | null) ?? 'closed', since: since ? Number(since) : null, reason: reason ?? null };
}

/** Reads the breaker as stored. */
export async function readBreaker(redis: Redis, keys: Pick<Keys, 'breaker' | 'shards'>): Promise<BreakerView> {
  return worstBreaker(await Promise.all(keys.shards.map(async (k) => breakerViewOf(await redis.hmget(k.breaker, ...BREAKER_FIELDS)))));
}

const SEVERITY: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * The breaker an operator sees when each payment shard has its own: the least closed of them
 * (one shard's open breaker holds its payments back; the others' still flow).
 */
export function worstBreaker(views: readonly BreakerView[]): BreakerView {
  return views.reduce((a, b) => (SEVERITY[b.state] > SEVERITY[a.state] ? b : a), views[0] ?? breakerViewOf([]));
}
