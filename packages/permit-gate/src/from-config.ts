/** The gate's options, derived from the one parsed config next to the gate's definition. */
import { providerKeyPrefix, type Config } from '@sluice/config';
import type { Redis } from 'ioredis';
import { PermitGate } from './gate.ts';

/**
 * The permit gate as the configuration describes it (the PG's limit and window, the margins and
 * horizons): one gate per provider (PG_PROVIDER), each with its own keys and limit.
 */
export function permitGateOf(c: Config, redis: Redis): PermitGate {
  return new PermitGate(redis, {
    prefix: providerKeyPrefix(c.REDIS_PREFIX, c.PG_PROVIDER),
    limit: c.PG_RATE_LIMIT,
    windowMs: c.PG_RATE_WINDOW_MS,
    marginMinMs: c.GATE_MARGIN_MIN_MS,
    marginMaxMs: c.GATE_MARGIN_MAX_MS,
    horizonMs: c.GATE_HORIZON_MS,
    priorityHorizonMs: c.GATE_PRIORITY_HORIZON_MS,
    batchMax: c.GATE_BATCH_MAX,
  });
}
