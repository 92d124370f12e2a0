/**
 * The outbox: a marker per payment admitted and not yet handed on (lua/admit.lua writes it, with
 * Redis's time). A worker renews the markers of the payments it is sending (its lease); the
 * sweeper turns markers older than the lease into confirm jobs, on the same clock.
 */
import type { Redis } from 'ioredis';
import { lua } from './lua/index.ts';

type ScriptRedis = Redis & { sluiceRenewOutbox(key: string, ...ids: string[]): Promise<number> };

/** Renews the markers of `ids` in `outboxKey` to Redis's now (those still there). Returns how many. */
export function renewOutboxMarkers(redis: Redis, outboxKey: string, ids: readonly string[]): Promise<number> {
  if (!('sluiceRenewOutbox' in redis)) redis.defineCommand('sluiceRenewOutbox', { numberOfKeys: 1, lua: lua('renew-outbox') });
  return (redis as ScriptRedis).sluiceRenewOutbox(outboxKey, ...ids);
}

/** Redis's clock now, in ms: what outbox markers' ages are read against. */
export async function redisNowMs(redis: Redis): Promise<number> {
  const [sec, usec] = await redis.time();
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}
