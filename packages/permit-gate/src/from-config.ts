/** The gate's options, derived from the one parsed config next to the gate's definition. */
import { providerKeyPrefix, slotPrefix, type Config } from '@sluice/config';
import type { Redis } from 'ioredis';
import { PermitGate, type GateOptions } from './gate.ts';

/**
 * Where a provider's gate keys live: under its prefix, and on a Redis Cluster in a slot of their
 * own (`{T:gate}`): only acquire.lua touches them, and every PG call of every process takes a
 * slot there, so they need not share a primary with the payments.
 */
export function gatePrefixOf(c: Pick<Config, 'REDIS_PREFIX' | 'PG_PROVIDER'>): string {
  return slotPrefix(providerKeyPrefix(c.REDIS_PREFIX, c.PG_PROVIDER), 'gate');
}

/**
 * The permit gate as the configuration describes it (the PG's limit and window, the margins and
 * horizons): one gate per provider (PG_PROVIDER), each with its own keys and limit. `lastMs`: how
 * the last millisecond before a slot is waited (`GateOptions`), `sleep` only off the main thread.
 */
export function permitGateOf(c: Config, redis: Redis, lastMs: GateOptions['lastMs'] = 'turns'): PermitGate {
  return new PermitGate(redis, {
    prefix: gatePrefixOf(c),
    limit: c.PG_RATE_LIMIT,
    windowMs: c.PG_RATE_WINDOW_MS,
    marginMinMs: c.GATE_MARGIN_MIN_MS,
    marginMaxMs: c.GATE_MARGIN_MAX_MS,
    horizonMs: c.GATE_HORIZON_MS,
    priorityHorizonMs: c.GATE_PRIORITY_HORIZON_MS,
    batchMax: c.GATE_BATCH_MAX,
    lastMs,
  });
}
