/**
 * Payment shards (REDIS_SHARDS > 1) over real Redis: the keys, intake's two steps (the claims at
 * the root, then the payment in its shard), what a crash between them leaves and how a sweep
 * settles it, released claims taken over, archiving's claims, and the transitions and readers
 * that route by a payment's shard.
 */
/// <reference path="./cluster-key-slot.d.ts" />
import calculateSlot from 'cluster-key-slot';
import { hashTagOf } from '@sluice/config';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BooksStream } from './books-stream.ts';
import { fairShares } from './fair-share.ts';
import { makeKeys, shardForKey, shardOfPaymentId, shardPrefix } from './keys.ts';
import { PaymentStore, type NewPayment } from './payments.ts';
import { paymentIdTime } from './record.ts';
import { connectRedis, type Redis } from './redis.ts';
import { checkShardCount } from './redis-safety.ts';
import { Transitions } from './transitions.ts';

const SHARDS = 4;
const prefix = `test-${randomUUID()}`;
let redis: Redis;
let store: PaymentStore;
let t: Transitions;
/** Transitions whose queue age limit has passed for any payment: its first confirm expires it (FAILED, never sent). */
let expiring: Transitions;

beforeAll(() => {
  redis = connectRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  store = new PaymentStore(redis, { prefix, idempotencyTtlMs: 60_000, retentionMs: 60_000, shards: SHARDS });
  t = new Transitions(redis, store.keys, {
    breaker: { consecutiveFailures: 3, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 },
    maxQueueAgeMs: 60_000, retentionMs: 60_000,
  });
  expiring = new Transitions(redis, store.keys, { breaker: { consecutiveFailures: 3, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 }, maxQueueAgeMs: 1, retentionMs: 60_000 });
});
/** Ends a queued payment FAILED in the queue (EXPIRED_IN_QUEUE): no confirm ever passed the guard. */
async function expire(id: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 5));
  expect(await expiring.guard({ paymentId: id, call: 'confirm', allowed: ['queued'], to: 'confirming' })).toEqual({ ok: false, reason: 'expired' });
}
/** Confirms a queued payment and ends it APPROVED. */
async function approve(id: string): Promise<void> {
  expect((await t.guard({ paymentId: id, call: 'confirm', allowed: ['queued'], to: 'confirming' })).ok).toBe(true);
  expect(await t.apply({ paymentId: id, expected: 'confirming', step: { do: 'finalize', status: 'APPROVED' }, event: { call: 'test' } })).toBe('final');
}
afterAll(async () => {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1_000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
  await redis.quit();
});

let n = 0;
/** A merchant's request: its payment (id in the shard of its idempotency key) and that key's hash. */
function request(over: Partial<NewPayment> = {}, idem = randomUUID().replace(/-/g, '')) {
  n += 1;
  const createdAt = Date.now();
  const p: NewPayment = {
    id: store.newId(createdAt, idem), merchantId: 'm1', provider: 'default', paymentKey: `pk_${prefix}_${n}`, orderId: `order-${prefix}-${n}`,
    amount: 1_000, currency: 'KRW', metadata: null, requestId: null, createdAt, ...over,
  };
  return { p, idem };
}
const create = (r: { p: NewPayment; idem: string }, fp = 'fp') => store.create(r.p, r.idem, fp, '{}', 1_000_000);

describe('payment shards: keys and ids', () => {
  it('gives each shard a prefix (a slot of its own under a hash tag), and each id its shard', () => {
    expect(shardPrefix('sluice', 3, SHARDS)).toBe('sluice:s3');
    expect(shardPrefix('{sluice}', 3, SHARDS)).toMatch(/^\{sluice:s3:\d+\}$/);
    const k = makeKeys('{sluice}', 'default', SHARDS);
    expect(k.shards.map((s) => s.open)).toEqual([0, 1, 2, 3].map((n) => `${shardPrefix('{sluice}', n, SHARDS)}:open`));
    // Shard n's slot is the middle of the n-th of equal ranges of the slots, for any tag: 16 over
    // 3 primaries with equal ranges are 5, 6 and 5; 64 over 5 are 12 or 13.
    for (const [tag, shards] of [['sluice', 16], ['acme-prod', 4], ['x', 32], ['y', 64]] as const) {
      const slots = Array.from({ length: shards }, (_, n) => calculateSlot(hashTagOf(shardPrefix(`{${tag}}`, n, shards))!));
      expect(slots).toEqual(Array.from({ length: shards }, (_, n) => Math.floor(((n + 0.5) * 16_384) / shards)));
      for (const primaries of [3, 5]) {
        const served = Array.from({ length: primaries }, (_, p) => slots.filter((s) => Math.floor((s * primaries) / 16_384) === p).length);
        expect(served.every((c) => c === Math.floor(shards / primaries) || c === Math.ceil(shards / primaries)), `${tag} ${shards}/${primaries}: ${served}`).toBe(true);
      }
    }
    // The claims stay at the root; long polls listen on one channel.
    expect(k.byOrderId('o')).toBe('{sluice}:oid:o');
    expect(k.shards.every((s) => s.finalChannel === k.finalChannel)).toBe(true);
    const id = store.newId(1_700_000_000_000, 'ff'.repeat(32));
    expect(shardOfPaymentId(id)).toBe(shardForKey('ff'.repeat(32), SHARDS));
    expect(paymentIdTime(id)).toBe(1_700_000_000_000);
    expect(k.shardOf(id).payment(id)).toBe(`${shardPrefix('{sluice}', shardOfPaymentId(id), SHARDS)}:pay:${id}`);
    // One shard: every key where it has always been.
    const one = makeKeys('sluice');
    expect(one.shards).toEqual([one]);
    expect(one.shardOf(id).payment(id)).toBe(`sluice:pay:${id}`);
  });

  it('refuses to start with a shard count other than the one the keys were written with', async () => {
    await checkShardCount(redis, store.keys);
    await checkShardCount(redis, store.keys);
    await expect(checkShardCount(redis, makeKeys(prefix, 'default', 2))).rejects.toThrow(/REDIS_SHARDS is 2.*written with 4/);
  });
});

describe('payment shards: intake', () => {
  it('spreads payments over every shard, each with its indexes there, and reads them back by id and orderId', async () => {
    const made = [];
    for (let i = 0; i < 80; i++) {
      const r = request();
      const res = await create(r);
      expect(res.kind).toBe('created');
      made.push(r.p);
    }
    const open = await Promise.all(store.keys.shards.map((k) => redis.zcard(k.open)));
    expect(open.every((c) => c > 5)).toBe(true);
    expect(open.reduce((a, b) => a + b, 0)).toBe(80);
    expect(await store.backlog()).toBe(80);
    expect((await store.counters())['intake:created']).toBe(80);
    // Nothing of a payment's state at the root: only its claims.
    expect(await redis.zcard(store.keys.open)).toBe(0);
    for (const p of made.slice(0, 10)) {
      expect(await redis.exists(store.keys.shardOf(p.id).payment(p.id))).toBe(1);
      expect((await store.get(p.id))?.orderId).toBe(p.orderId);
      expect((await store.viewByOrderId(p.orderId))?.record.id).toBe(p.id);
      expect((await store.getByOrderId(p.orderId))?.id).toBe(p.id);
    }
    // Each fair queue is in its shard, and each shard's admission takes its own payments.
    const admitted = (await Promise.all(fairShares(redis, store.keys).map((f) => f.admit(1_000, 1_000, 60_000)))).map((ids) => ids.length);
    expect(admitted).toEqual(open);
  });

  it('answers a repeat as a replay, a key used for another request as reused, and claims held as duplicates', async () => {
    const r = request();
    const first = await create(r);
    expect(first.kind).toBe('created');
    const again = await create({ ...r, p: { ...r.p, id: store.newId(r.p.createdAt, r.idem) } });
    expect(again).toMatchObject({ kind: 'replay', id: r.p.id });

    // The same key with another body (another orderId): reused, and the claims it took go back.
    const other = { p: { ...request().p, id: store.newId(Date.now(), r.idem) }, idem: r.idem };
    expect((await create(other, 'other-fp')).kind).toBe('reused');
    expect(await redis.get(store.keys.byOrderId(other.p.orderId))).toBeNull();
    expect(await redis.get(store.keys.byPaymentKey(other.p.paymentKey))).toBeNull();
    expect(await redis.zcard(store.keys.pendingClaims)).toBeGreaterThan(0);

    // Another merchant's request for the same paymentKey, or the same orderId, in whatever shard.
    expect(await create(request({ merchantId: 'm2', paymentKey: r.p.paymentKey }))).toEqual({ kind: 'dup_payment_key', heldBy: r.p.id });
    expect(await create(request({ orderId: r.p.orderId }))).toEqual({ kind: 'dup_order_id', heldBy: r.p.id });
    // Nothing left behind by the refusals: the claims still name the first payment.
    expect((await redis.get(store.keys.byOrderId(r.p.orderId)))?.split(' ')[0]).toBe(r.p.id);
  });

  it('a crash between the two steps: the retry goes on with the same id; a payment never written is fenced and its claims released', async () => {
    // The API took the claims and died before its shard wrote the payment.
    const r = request();
    const taken = await store.claims!.take(r.p, `m1:${r.idem}`, Date.now());
    expect(taken).toEqual({ kind: 'ok', id: r.p.id, fresh: true });
    // The merchant's retry of the same request (a new id drawn) finds its claims and writes the payment with their id.
    const retry = await create({ ...r, p: { ...r.p, id: store.newId(Date.now(), r.idem) } });
    expect(retry).toMatchObject({ kind: 'created', id: r.p.id });

    // Another that is never retried: a sweep past the grace fences its id and releases its claims.
    const lost = request();
    await store.claims!.take(lost.p, `m1:${lost.idem}`, Date.now());
    const released = await store.claims!.sweep(Date.now() + 1, 0);
    expect(released).toBe(1);
    expect(await redis.get(store.keys.byOrderId(lost.p.orderId))).toBeNull();
    expect(await redis.hget(store.keys.shardOf(lost.p.id).payment(lost.p.id), 'fenced')).toBe('1');
    // The sweep saw the first one written: its pending entry went, its claims stay.
    expect(await redis.zcard(store.keys.pendingClaims)).toBe(0);
    expect((await redis.get(store.keys.byOrderId(r.p.orderId)))?.split(' ')[0]).toBe(r.p.id);

    // The dead request's step, were it to run late, cannot write the payment it fenced.
    await store.claims!.take(lost.p, `m1:${lost.idem}`, Date.now());
    const res = await store.create(lost.p, lost.idem, 'fp', '{}', 1_000_000);
    // (create found the fence, released, and wrote it afresh under a new id of the same shard)
    expect(res.kind).toBe('created');
    if (res.kind !== 'created') return;
    expect(res.id).not.toBe(lost.p.id);
    expect(shardOfPaymentId(res.id)).toBe(shardOfPaymentId(lost.p.id));
    expect(await redis.hget(store.keys.shardOf(lost.p.id).payment(lost.p.id), 'id')).toBeNull();
    expect((await redis.get(store.keys.byOrderId(lost.p.orderId)))?.split(' ')[0]).toBe(res.id);
  });

  it('a sweep keeps up with intake: it settles every pending claim past the grace, batch after batch', async () => {
    for (let i = 0; i < 35; i++) expect((await create(request())).kind).toBe('created');
    expect(await redis.zcard(store.keys.pendingClaims)).toBeGreaterThanOrEqual(35);
    expect(await store.claims!.sweep(Date.now() + 1, 0, 10)).toBe(0);
    expect(await redis.zcard(store.keys.pendingClaims)).toBe(0);
  });

  it('takes over the claims of a payment that ended FAILED before any confirm, and only those', async () => {
    const r = request();
    expect((await create(r)).kind).toBe('created');
    await expire(r.p.id);
    expect(await redis.hget(store.keys.shardOf(r.p.id).payment(r.p.id), 'claimsReleased')).toBe('1');
    const again = request({ paymentKey: r.p.paymentKey, orderId: r.p.orderId });
    const res = await create(again);
    expect(res.kind).toBe('created');
    expect((await redis.get(store.keys.byOrderId(r.p.orderId)))?.split(' ')[0]).toBe(again.p.id);

    // A payment the PG may have seen keeps them.
    const sent = request();
    expect((await create(sent)).kind).toBe('created');
    expect((await t.guard({ paymentId: sent.p.id, call: 'confirm', allowed: ['queued'], to: 'confirming' })).ok).toBe(true);
    expect(await t.apply({ paymentId: sent.p.id, expected: 'confirming', step: { do: 'finalize', status: 'FAILED', failure: { code: 'TEST', message: 'test' } }, event: { call: 'test' } })).toBe('final');
    expect(await create(request({ orderId: sent.p.orderId }))).toEqual({ kind: 'dup_order_id', heldBy: sent.p.id });
  });

  it('archiving settles the root\'s claims: kept until the horizon, or released for a payment that released them', async () => {
    const kept = request();
    const released = request();
    for (const r of [kept, released]) expect((await create(r)).kind).toBe('created');
    await approve(kept.p.id);
    await expire(released.p.id);
    const until = Date.now() + 3_600_000;
    for (const r of [kept, released]) {
      const k = store.keys.shardOf(r.p.id);
      const stream = new BooksStream(redis, k, undefined, store.claims);
      const version = await redis.hget(k.payment(r.p.id), 'v');
      expect(await stream.archive({ id: r.p.id, version: Number(version), merchantId: 'm1', idemHash: r.idem, paymentKey: r.p.paymentKey, orderId: r.p.orderId, createdAt: r.p.createdAt }, 1_000, until)).toBe(true);
    }
    expect(Math.abs((await redis.pexpiretime(store.keys.byOrderId(kept.p.orderId))) - until)).toBeLessThan(5);
    expect(await redis.exists(store.keys.byOrderId(released.p.orderId), store.keys.byPaymentKey(released.p.paymentKey))).toBe(0);
  });
});

describe('payment shards: transitions', () => {
  it('guards and steps each payment in its shard, and records its calls with its shard\'s breaker', async () => {
    const ids: string[] = [];
    while (new Set(ids.map(shardOfPaymentId)).size < SHARDS) {
      const r = request();
      expect((await create(r)).kind).toBe('created');
      ids.push(r.p.id);
    }
    for (const id of ids) {
      expect((await t.guard({ paymentId: id, call: 'confirm', allowed: ['queued'], to: 'confirming' })).ok).toBe(true);
      await t.record({ call: 'confirm', outcome: 'approved', pgFailed: false, httpStatus: 200, paymentId: id, idempotencyKey: id, latencyMs: 5 });
      expect(await t.apply({ paymentId: id, expected: 'confirming', step: { do: 'finalize', status: 'APPROVED' }, event: { call: 'test' } })).toBe('final');
    }
    for (const [s, k] of store.keys.shards.entries()) {
      const mine = ids.filter((id) => shardOfPaymentId(id) === s);
      for (const id of ids) expect(await redis.zscore(k.approved, id) !== null, `${id} approved in shard ${s}`).toBe(mine.includes(id));
      const calls = Object.values(await redis.hgetall(k.pgRate)).reduce((a, v) => a + Number(v), 0);
      expect(calls).toBe(mine.length);
    }
    expect((await store.counters())['final:APPROVED']).toBeGreaterThanOrEqual(ids.length);
  });
});
