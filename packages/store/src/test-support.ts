/**
 * For this package's tests: a store and its transitions under a fresh key prefix, on the real
 * Redis, set up before the file's tests and its keys deleted after them.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { PaymentStore } from './payments.ts';
import { connectRedis, type Redis } from './redis.ts';
import type { BreakerSettings } from './breaker.ts';
import { Transitions } from './transitions.ts';

/** A store and its transitions on real Redis under a fresh prefix: for this package's tests. */
export interface TestStore {
  redis: Redis;
  store: PaymentStore;
  t: Transitions;
}

/** Registers the set-up and clean-up hooks; the fields are filled once `beforeAll` has run. */
export function useTestStore(breaker: BreakerSettings): TestStore {
  const prefix = `test-${randomUUID()}`;
  const ctx = {} as TestStore;
  beforeAll(() => {
    ctx.redis = connectRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    ctx.store = new PaymentStore(ctx.redis, { prefix, idempotencyTtlMs: 60_000, retentionMs: 60_000 });
    ctx.t = new Transitions(ctx.redis, ctx.store.keys, { breaker, maxQueueAgeMs: 60_000, retentionMs: 60_000 });
  });
  afterAll(async () => {
    const keys = await ctx.redis.keys(`${prefix}:*`);
    if (keys.length) await ctx.redis.unlink(...keys);
    await ctx.redis.quit();
  });
  return ctx;
}
