/** The intake script's eta and body splicing, and the one-round-trip view, over real Redis. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etaMs, PaymentStore, type NewPayment } from './payments.ts';
import { newPaymentId } from './record.ts';
import { connectRedis, type Redis } from './redis.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: Redis;
let store: PaymentStore;
const prefix = `test-${randomUUID()}`;

beforeAll(() => {
  redis = connectRedis(REDIS_URL);
  store = new PaymentStore(redis, { prefix, idempotencyTtlMs: 60_000, retentionMs: 60_000 });
});
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
function payment(createdAt: number, over: Partial<NewPayment> = {}): NewPayment {
  n += 1;
  return {
    id: newPaymentId(createdAt), merchantId: 'm1', provider: 'default', paymentKey: `pk_${prefix}_${n}`, orderId: `order-${n}-${randomUUID().slice(0, 8)}`,
    amount: 1_000, currency: 'KRW', metadata: null, requestId: `req-${n}`, createdAt, ...over,
  };
}
const template = (rate = { windowMs: 1_000, limit: 500 }) => ({ head: '{"eta":"', tail: '"}', rate });

describe('PaymentStore.create with a 202 template', () => {
  it('splices the ISO eta JavaScript would write, for dates across leap years and centuries', async () => {
    const times = [
      0, 951_782_400_000 /* 2000-02-29 */, 4_107_542_399_999 /* 2100-02-28T23:59:59.999 */, 1_709_164_800_123 /* 2024-02-29 */,
      ...Array.from({ length: 40 }, () => Math.floor(Math.random() * 8_000_000_000_000)),
    ];
    // An odd rate, so the division is not exact; the merchant's queue grows by one per payment
    // (nothing admits here), and the payment is behind all of it at the whole rate (one merchant).
    const rate = { windowMs: 1_000, limit: 3 };
    for (const t of times) {
      const queued = await redis.llen(store.keys.fair('default').queue('m1'));
      const idem = randomUUID();
      const res = await store.create(payment(t), idem, 'fp', template(rate), 1_000_000);
      expect(res.kind).toBe('created');
      if (res.kind !== 'created') return;
      const expected = new Date(etaMs(queued + 1, t, rate)).toISOString();
      expect(res.body).toBe(`{"eta":"${expected}"}`);
      // The idempotency key keeps the eta (a replay renders the body again with it), not the body.
      expect(await redis.hmget(store.keys.idempotency('m1', idem), 'eta', 'body')).toEqual([expected, null]);
    }
  });

  it('answers a replay with the payment and its eta while hot, a body stored whole as it is, and "the books" once the payment left', async () => {
    const idem = randomUUID();
    const p = payment(Date.now());
    const created = await store.create(p, idem, 'fp-1', template({ windowMs: 1_000, limit: 3 }), 1_000_000);
    expect(created.kind).toBe('created');
    const eta = (JSON.parse((created as { body: string }).body) as { eta: string }).eta;
    const replay = await store.create(payment(Date.now()), idem, 'fp-1', template(), 1_000_000);
    expect(replay).toEqual({ kind: 'replay', id: p.id, answer: { from: 'record', record: await store.get(p.id), eta } });
    // The idempotency hash is small enough for a listpack.
    expect(await redis.object('ENCODING', store.keys.idempotency('m1', idem))).toBe('listpack');

    // A key written with its body (before the body left Redis) answers with that body.
    const legacy = randomUUID();
    await redis.hset(store.keys.idempotency('m1', legacy), 'fp', 'fp-9', 'id', p.id, 'body', '{"stored":true}');
    expect(await store.create(payment(Date.now()), legacy, 'fp-9', template(), 1_000_000)).toEqual({ kind: 'replay', id: p.id, answer: { from: 'body', body: '{"stored":true}' } });

    // The hash keeps the fingerprint's first 32 digits: the same fingerprint replays, one that
    // differs in them is another request.
    const hot = randomUUID();
    const fp64 = 'c'.repeat(32) + 'd'.repeat(32);
    const q = payment(Date.now());
    expect((await store.create(q, hot, fp64, template(), 1_000_000)).kind).toBe('created');
    expect(await redis.hget(store.keys.idempotency('m1', hot), 'fp')).toBe('c'.repeat(32));
    expect(await store.create(payment(Date.now()), hot, fp64, template(), 1_000_000)).toMatchObject({ kind: 'replay', id: q.id });
    expect((await store.create(payment(Date.now()), hot, `${'c'.repeat(31)}e${'d'.repeat(32)}`, template(), 1_000_000)).kind).toBe('reused');

    // Archived: the string '<first 32 digits of the fingerprint> <id>' answers the full
    // fingerprint (and one archived whole, before the cut), and not another one.
    const fp = 'a'.repeat(32) + 'b'.repeat(32);
    for (const [stored, asked, kind] of [
      [fp.slice(0, 32), fp, 'replay'], [fp, fp, 'replay'], [fp.slice(0, 32), `${'a'.repeat(31)}c${'b'.repeat(32)}`, 'reused'], [fp, fp.slice(0, 32), 'reused'],
    ] as const) {
      const key = randomUUID();
      await redis.set(store.keys.idempotency('m1', key), `${stored} ${p.id}`);
      expect((await store.create(payment(Date.now()), key, asked, template(), 1_000_000)).kind).toBe(kind);
    }

    // A record without a fingerprint (never written so) is another request, not a script error.
    const broken = randomUUID();
    await redis.hset(store.keys.idempotency('m1', broken), 'id', p.id);
    expect((await store.create(payment(Date.now()), broken, 'fp-1', template(), 1_000_000)).kind).toBe('reused');

    // The payment's hash gone (a race with archiving): the books answer.
    await redis.del(store.keys.payment(p.id));
    expect(await store.create(payment(Date.now()), idem, 'fp-1', template(), 1_000_000)).toEqual({ kind: 'replay', id: p.id, answer: { from: 'books' } });

    const plain = await store.create(payment(Date.now()), randomUUID(), 'fp-2', '{"plain":true}', 1_000_000);
    expect(plain).toMatchObject({ kind: 'created', body: '{"plain":true}' });
  });

  it('writes every field as a string, large amounts and metadata included', async () => {
    const p = payment(Date.now(), { amount: Number.MAX_SAFE_INTEGER, metadata: { note: 'é ✓ "quoted"', n: '1' } });
    await store.create(p, randomUUID(), 'fp', template(), 1_000_000);
    const h = await redis.hgetall(store.keys.payment(p.id));
    expect(h).toMatchObject({ amount: '9007199254740991', createdAt: String(p.createdAt), attempts: '0', status: 'QUEUED', requestId: p.requestId });
    expect(JSON.parse(h.metadata!)).toEqual(p.metadata);
    expect((await store.get(p.id))?.amount).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('stores a paymentKey with a lone surrogate as U+FFFD instead of failing the script', async () => {
    const p = payment(Date.now(), { paymentKey: `pk_\ud800_${randomUUID()}` });
    expect((await store.create(p, randomUUID(), 'fp', template(), 1_000_000)).kind).toBe('created');
    expect((await store.get(p.id))?.paymentKey).toBe(p.paymentKey.replace('\ud800', '\ufffd'));
  });
});

describe('PaymentStore.view', () => {
  it("reads the record and its send slots together: its place in its merchant's queue, none once it is not QUEUED", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = payment(Date.now(), { merchantId: 'm-view' });
      await store.create(p, randomUUID(), 'fp', template(), 1_000_000);
      ids.push(p.id);
    }
    const views = await Promise.all(ids.map((id) => store.view(id)));
    // m1 (the other tests') waits too, with the same weight: m-view's share is half the rate.
    expect(await redis.lrange(store.keys.fair('default').ring, 0, -1)).toEqual(['m1', 'm-view']);
    expect(views.map((v) => v?.slots)).toEqual([2, 4, 6]);
    expect(views[0]?.record.id).toBe(ids[0]);

    await redis.hset(store.keys.payment(ids[0]!), 'status', 'PROCESSING');
    expect((await store.view(ids[0]!))?.slots).toBeNull();
    expect((await store.viewByOrderId(views[1]!.record.orderId))?.slots).toBe(4);
    expect(await store.view('pay_nope')).toBeNull();
    expect(await store.viewByOrderId('order-nope')).toBeNull();
  });

  it('ranks a QUEUED payment from before the fair queues (no fqSeq) in the backlog, as then', async () => {
    const p = payment(9_000_000_000_000, { merchantId: 'm-legacy' }); // after every other (open is by createdAt)
    await store.create(p, randomUUID(), 'fp', template(), 1_000_000);
    await redis.hdel(store.keys.payment(p.id), 'fqSeq');
    expect((await store.view(p.id))?.slots).toBe(await redis.zcard(store.keys.open));
  });
});
