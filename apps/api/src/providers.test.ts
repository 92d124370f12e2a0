/**
 * Several PGs at the API, over real Redis: `provider` at intake (required, validated, stored,
 * shown, part of the idempotent request), claims global across providers, and GET /v1/providers.
 */
import { makeKeys } from '@sluice/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recommend, type ProviderAdvice } from './providers.ts';
import { get, paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
const ops = { authorization: `Basic ${Buffer.from('ops:ops-password-1').toString('base64')}` };
beforeAll(async () => {
  t = await startTestApp({
    PROVIDERS: JSON.stringify([
      { id: 'pga', baseUrl: 'http://127.0.0.1:1', rateLimit: 500, weight: 3 },
      { id: 'pgb', baseUrl: 'http://127.0.0.1:2', rateLimit: 200, rateWindowMs: 1_000, weight: 1 },
    ]),
  });
});
afterAll(async () => {
  await t.close();
});

describe('provider at intake', () => {
  it('is required when there are several, and must be one of them: 400 otherwise, nothing written', async () => {
    const open = await t.redis.zcard(t.store.keys.open);
    const missing = await postPayment(t, { body: paymentBody() });
    expect(missing.status).toBe(400);
    expect(missing.json.details).toEqual([expect.objectContaining({ path: 'provider' })]);
    const unknown = await postPayment(t, { body: paymentBody({ provider: 'pgc' }) });
    expect(unknown.status).toBe(400);
    expect(unknown.json.details).toEqual([expect.objectContaining({ path: 'provider' })]);
    expect((await postPayment(t, { body: paymentBody({ provider: 42 }) })).status).toBe(400);
    expect(await t.redis.zcard(t.store.keys.open)).toBe(open);
  });

  it("is stored and shown, and the payment waits in that provider's queue with that provider's eta", async () => {
    const res = await postPayment(t, { body: paymentBody({ provider: 'pgb' }) });
    expect(res.status).toBe(202);
    expect(res.json.provider).toBe('pgb');
    expect((await t.store.get(res.json.id))?.provider).toBe('pgb');
    expect(await t.redis.lrange(t.store.keys.fair('pgb').queue('m_a'), 0, -1)).toEqual([res.json.id]);
    expect(await t.redis.llen(t.store.keys.fair('pga').queue('m_a'))).toBe(0);
    // First in pgb's queue, alone: one slot at 200/s, 5 ms after intake.
    expect(Date.parse(res.json.eta) - Date.parse(res.json.createdAt)).toBe(5);
    const read = await get(t, `/v1/payments/${res.json.id}`, t.keyA);
    expect(read.json.provider).toBe('pgb');
  });

  it('is part of the idempotent request: the same key with another provider is 422, with the same one a replay', async () => {
    const body = paymentBody({ provider: 'pga' });
    const first = await postPayment(t, { idem: 'prov-1', body });
    expect(first.status).toBe(202);
    const other = await postPayment(t, { idem: 'prov-1', body: { ...body, provider: 'pgb' } });
    expect(other.status).toBe(422);
    expect(other.json.code).toBe('IDEMPOTENCY_KEY_REUSED');
    const again = await postPayment(t, { idem: 'prov-1', body });
    expect(again.status).toBe(202);
    expect(again.text).toBe(first.text);
  });

  it('keeps orderId and paymentKey claims global: an order paid at one PG cannot be paid at the other', async () => {
    const body = paymentBody({ provider: 'pga' });
    expect((await postPayment(t, { body })).status).toBe(202);
    const sameOrder = await postPayment(t, { body: paymentBody({ provider: 'pgb', orderId: body.orderId }) });
    expect(sameOrder.status).toBe(409);
    expect(sameOrder.json.code).toBe('DUPLICATE_ORDER_ID');
    const sameKey = await postPayment(t, { body: paymentBody({ provider: 'pgb', paymentKey: body.paymentKey }) });
    expect(sameKey.json.code).toBe('DUPLICATE_PAYMENT_KEY');
  });
});

describe('GET /v1/providers', () => {
  it('lists each provider with its state, backlog and eta for this merchant, and recommends an available one', async () => {
    const before = Date.now();
    const res = await get(t, '/v1/providers', t.keyB);
    const after = Date.now();
    expect(res.status).toBe(200);
    const [a, b] = res.json.providers as ProviderAdvice[];
    expect(a).toMatchObject({ id: 'pga', state: 'available', breaker: 'closed', weight: 3, limitPerSecond: 500 });
    expect(b).toMatchObject({ id: 'pgb', state: 'available', breaker: 'closed', weight: 1, limitPerSecond: 200 });
    // pgb holds m_a's one payment; m_b's first would share pgb's rate with m_a: 2 slots of 5 ms.
    expect(b!.backlog).toEqual({ waiting: 1, admitted: 0 });
    expect(Date.parse(b!.eta)).toBeGreaterThanOrEqual(before + 10);
    expect(Date.parse(b!.eta)).toBeLessThanOrEqual(after + 10);
    expect(['pga', 'pgb']).toContain(res.json.recommended);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect((await get(t, '/v1/providers')).status).toBe(401);
  });

  it('says down while a breaker is open, degraded while it probes or calls fail often, and recommends around them', async () => {
    const kb = makeKeys(t.prefix, 'pgb');
    const ka = makeKeys(t.prefix, 'pga');
    try {
      await t.redis.hset(kb.breaker, 'state', 'open', 'since', Date.now(), 'reason', 'test');
      let res = await get(t, '/v1/providers', t.keyA);
      expect(res.json.providers.map((p: ProviderAdvice) => p.state)).toEqual(['available', 'down']);
      expect(res.json.recommended).toBe('pga');

      // pga failing half its calls in the window: degraded, and still recommended (nothing is available).
      const sec = Math.floor(Date.now() / 1_000);
      await t.redis.hset(`${ka.breaker}:window`, `t:${sec}`, 20, `f:${sec}`, 10);
      res = await get(t, '/v1/providers', t.keyA);
      expect(res.json.providers[0]).toMatchObject({ state: 'degraded', errorRate: 0.5 });
      expect(res.json.recommended).toBe('pga');

      await t.redis.hset(ka.breaker, 'state', 'open');
      res = await get(t, '/v1/providers', t.keyA);
      expect(res.json.providers.map((p: ProviderAdvice) => p.state)).toEqual(['down', 'down']);
      expect(res.json.recommended).toBeNull();
    } finally {
      await t.redis.del(ka.breaker, kb.breaker, `${ka.breaker}:window`);
    }
  });

  it('draws the recommendation by weight among the available ones', () => {
    const p = (id: string, state: ProviderAdvice['state'], weight: number) => ({ id, state, weight }) as ProviderAdvice;
    const advice = [p('a', 'available', 3), p('b', 'available', 1), p('c', 'down', 100), p('d', 'degraded', 5)];
    const draws = Array.from({ length: 1_000 }, (_, i) => recommend(advice, () => (i + 0.5) / 1_000));
    expect(draws.filter((d) => d === 'a')).toHaveLength(750);
    expect(draws.filter((d) => d === 'b')).toHaveLength(250);
    expect(recommend([p('a', 'available', 0), p('d', 'degraded', 1)])).toBe('d');
  });
});

describe('the operators', () => {
  it('see a row per provider on the dashboard and in /metrics', async () => {
    const d = await get(t, '/dashboard/data', undefined, ops);
    expect(d.status).toBe(200);
    expect(d.json.providers).toEqual([
      expect.objectContaining({ id: 'pga', limitPerSecond: 500, breaker: 'closed', connections: 0 }),
      expect.objectContaining({ id: 'pgb', limitPerSecond: 200, breaker: 'closed', waiting: 1, admitted: 0, etaSeconds: 1 }),
    ]);
    const m = await get(t, '/metrics', undefined, ops);
    expect(m.text).toContain('sluice_provider_limit_per_second{provider="pgb"} 200');
    expect(m.text).toContain('sluice_provider_backlog_payments{provider="pgb"} 1');
  });
});
