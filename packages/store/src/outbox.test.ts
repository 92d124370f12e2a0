/**
 * The outbox's leases over real Redis (outbox.ts, lua/renew-outbox.lua): a renewal moves only the
 * markers still there to Redis's now, and a first renewal in a busy turn answers like every other
 * command of that turn, on an auto-pipelined connection (a Redis Cluster's) as on one that writes
 * each turn's commands together (a single Redis's or Sentinel's).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis as IoRedis } from 'ioredis';
import { OutboxLeases, redisNowMs } from './outbox.ts';
import { connectRedis, type Redis } from './redis.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: Redis;
const prefix = `test-${randomUUID()}`;
const outbox = `${prefix}:outbox`;

beforeAll(() => {
  redis = connectRedis(REDIS_URL);
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.unlink(...keys);
  await redis.quit();
});

describe('OutboxLeases', () => {
  it('renews the markers still there to Redis\'s now, and writes none back', async () => {
    const leases = new OutboxLeases(redis);
    await redis.zadd(outbox, 1_000, 'p1', 2_000, 'p2');
    const before = await redisNowMs(redis);
    // p3 was cleared (its step ended, or the sweeper took it): not written back.
    expect(await leases.renew(outbox, ['p1', 'p3'])).toBe(1);
    const after = await redisNowMs(redis);
    const p1 = Number(await redis.zscore(outbox, 'p1'));
    expect(p1).toBeGreaterThanOrEqual(before);
    expect(p1).toBeLessThanOrEqual(after);
    expect(await redis.zscore(outbox, 'p2')).toBe('2000');
    expect(await redis.zscore(outbox, 'p3')).toBeNull();
  });

  it.each([
    ['auto-pipelined (ioredis, as on a Redis Cluster)', () => new IoRedis(REDIS_URL, { enableAutoPipelining: true, maxRetriesPerRequest: null })],
    ['written turn by turn (connectRedis)', () => connectRedis(REDIS_URL)],
  ])('renews in the same turn as many other commands of a busy connection, %s', async (_, open) => {
    // A connection of its own, busy from its first command, as a worker's is under load.
    const busy = open();
    try {
      const leases = new OutboxLeases(busy);
      await busy.zadd(outbox, 1_000, 'q1');
      const others = Array.from({ length: 200 }, (_, i) => busy.set(`${prefix}:k${i}`, String(i)));
      const renewed = leases.renew(outbox, ['q1']);
      const more = Array.from({ length: 200 }, (_, i) => busy.get(`${prefix}:k${i}`));
      expect(await Promise.all(others)).toEqual(others.map(() => 'OK'));
      expect(await renewed).toBe(1);
      expect(await Promise.all(more)).toEqual(more.map((_, i) => String(i)));
    } finally {
      await busy.quit();
    }
  });
});
