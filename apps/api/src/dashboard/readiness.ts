/**
 * Advisory readiness checks: what `/readyz` shows operators without ever answering 503 for it.
 * A full Redis or an open breaker does not stop the API taking payments (intake answers 202, or
 * 503 BACKLOG_FULL on its own), so a load balancer must not pull the API for them.
 */
import type { Redis } from 'ioredis';
import { INFO_OF_KEY_OWNER, readBreaker, type Keys } from '@sluice/store';
import type { ReadinessCheck } from '../health.ts';
import { parseRedisMemory } from './ops-reader.ts';

/** Share of maxmemory past which `/readyz` says `redisMemory: warn` (the alert's threshold too). */
export const REDIS_MEMORY_WARN_RATIO = 0.8;

/**
 * `redisMemory`: `ok`, or `warn` past {@link REDIS_MEMORY_WARN_RATIO} of maxmemory. With
 * `noeviction` a full Redis refuses writes: every intake then fails, so operators need the
 * warning well before.
 */
export function redisMemoryCheck(redis: Redis, keys: Pick<Keys, 'counters' | 'shards'>, warnRatio = REDIS_MEMORY_WARN_RATIO): ReadinessCheck {
  return {
    name: 'redisMemory',
    advisory: true,
    // The servers that hold the payments (on a Redis Cluster, their shards' slots' owners): the fullest.
    check: async () => {
      const ratios = await Promise.all(keys.shards.map(async (k) => parseRedisMemory((await redis.eval(INFO_OF_KEY_OWNER, 1, k.counters, 'memory')) as string).ratio));
      return Math.max(...ratios) > warnRatio ? 'warn' : 'ok';
    },
  };
}

/** `breaker`: the shared PG circuit breaker's state (`closed`, `half_open`, `open`). */
export function breakerCheck(redis: Redis, keys: Pick<Keys, 'breaker' | 'shards'>, name = 'breaker'): ReadinessCheck {
  return {
    name,
    advisory: true,
    check: async () => (await readBreaker(redis, keys)).state,
  };
}
