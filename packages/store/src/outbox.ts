/**
 * The outbox: a marker per payment admitted and not yet handed on (lua/admit.lua writes it, with
 * Redis's time). A worker renews the markers of the payments it is sending (its lease); the
 * sweeper turns markers older than the lease into confirm jobs, on the same clock.
 */
import type { Redis } from 'ioredis';
import { lua } from './lua/index.ts';

type ScriptRedis = Redis & { sluiceRenewOutbox(key: string, ...ids: string[]): Promise<number> };

/** Renews outbox markers (lua/renew-outbox.lua). */
export class OutboxLeases {
  private readonly r: ScriptRedis;

  /**
   * Make it when the process starts, as every store class here defines its scripts: ioredis's
   * auto-pipelining adds a command to the pipeline of the current turn by the command's name, and
   * a pipeline made before the script was defined has no such name. The command is then lost
   * from the pipeline while its caller still waits for an answer, the pipeline's answers no
   * longer line up with its callers, and ioredis throws where nothing catches it (seen: a worker
   * that defined this script at its first renewal, under load, died with `results[i] is not
   * iterable`).
   */
  constructor(redis: Redis) {
    if (!('sluiceRenewOutbox' in redis)) redis.defineCommand('sluiceRenewOutbox', { numberOfKeys: 1, lua: lua('renew-outbox') });
    this.r = redis as ScriptRedis;
  }

  /** Renews the markers of `ids` in `outboxKey` to Redis's now (those still there). Returns how many. */
  renew(outboxKey: string, ids: readonly string[]): Promise<number> {
    return this.r.sluiceRenewOutbox(outboxKey, ...ids);
  }
}

/** Redis's clock now, in ms: what outbox markers' ages are read against. */
export async function redisNowMs(redis: Redis): Promise<number> {
  const [sec, usec] = await redis.time();
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}
