/**
 * The whole gateway over 4 payment shards (REDIS_SHARDS=4) on the local Redis, as real processes:
 * two workers, a drainer, the books. Payments spread over every shard; repeats, reused keys and
 * duplicates are answered as with one shard, across shards; a merchant's cancel goes through its
 * payment's shard; every payment ends as the PG's ledger holds it, once, and is in the books; the
 * operator's views add the shards up.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { booksPool } from '@sluice/books';
import { shardOfPaymentId } from '@sluice/store';
import { checkInvariants, getJson, type LedgerEntry } from '@sluice/test-support';
import { ADMIN, DEMO_KEY, drain, keysOf, OTHER_KEY, postPayment, readPayments, startStack, type Stack } from './support/stack.ts';

let s: Stack;
let pool: pg.Pool;
beforeAll(async () => {
  s = await startStack({
    workers: 2,
    books: true,
    env: { REDIS_SHARDS: '4' },
    sim: { SIM_LATENCY_MEDIAN_MS: '20', SIM_LATENCY_P99_MS: '200', SIM_DECLINE_RATE: '0.1' },
  });
  pool = booksPool(s.databaseUrl!);
});
afterAll(async () => {
  await pool?.end();
  await s?.stop();
});

const auth = { authorization: `Bearer ${DEMO_KEY}` };
const FINAL = ['APPROVED', 'DECLINED', 'FAILED', 'CANCELED'];

describe('four payment shards on one Redis', () => {
  it('spreads payments over the shards and keeps every answer and money rule of one shard', async () => {
    const run = Date.now().toString(36);
    const pay = (i: number) => ({ paymentKey: i % 25 === 0 ? `sim_nosession_${run}_${i}` : `pk_${run}_${i}`, orderId: `order-${run}-${i}`, amount: 1_000 + i });
    const posts = await Promise.all(Array.from({ length: 300 }, (_, i) => postPayment(s.apiUrl, pay(i), `sh-${run}-${i}`)));
    expect(posts.map((p) => p.status)).toEqual(Array(300).fill(202));
    const ids = posts.map((p) => p.body.id);
    // Each id names its shard, and every shard got payments.
    const perShard = [0, 1, 2, 3].map((n) => ids.filter((id) => shardOfPaymentId(id) === n).length);
    expect(perShard.every((c) => c > 30), JSON.stringify(perShard)).toBe(true);

    // A repeat is the same payment; a key reused for another request is refused; duplicates are
    // refused whichever shard their request's key falls in, and for the other merchant too.
    const replays = await Promise.all(Array.from({ length: 20 }, (_, i) => postPayment(s.apiUrl, pay(i), `sh-${run}-${i}`)));
    expect(replays.map((r) => [r.status, r.body.id])).toEqual(ids.slice(0, 20).map((id) => [202, id]));
    expect((await postPayment(s.apiUrl, { ...pay(1), amount: 9 }, `sh-${run}-1`)).status).toBe(422);
    const dupOrder = await Promise.all(Array.from({ length: 8 }, (_, i) => postPayment(s.apiUrl, { ...pay(i + 1), paymentKey: `pk_${run}_other_${i}` }, `sh-${run}-dup-o-${i}`)));
    expect(dupOrder.map((r) => [r.status, (r.body as unknown as { code: string }).code])).toEqual(Array(8).fill([409, 'DUPLICATE_ORDER_ID']));
    const dupKey = await postPayment(s.apiUrl, { ...pay(2), orderId: `order-${run}-other` }, `sh-${run}-dup-k`, OTHER_KEY);
    expect(dupKey.status).toBe(409);

    // A long poll hears a payment's end in any shard; the lookup by orderId finds it in its shard.
    const polled = await getJson<{ id: string; status: string }>(`${s.apiUrl}/v1/payments/${ids[3]}?wait=20`, { headers: auth });
    expect(FINAL).toContain(polled.status);
    const byOrder = await getJson<{ id: string }>(`${s.apiUrl}/v1/payments?orderId=${encodeURIComponent(pay(3).orderId)}`, { headers: auth });
    expect(byOrder.id).toBe(ids[3]);

    await drain(s.redis, s.prefix, 90_000);
    // A merchant's cancel of an approved payment, in its shard, refunded once.
    const records = await readPayments(s.redis, s.prefix, ids);
    const approved = ids.find((id) => records.get(id)?.status === 'APPROVED')!;
    const cancel = await fetch(`${s.apiUrl}/v1/payments/${approved}/cancel`, {
      method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'idempotency-key': `sh-${run}-cancel` }, body: JSON.stringify({ reason: 'customer asked' }),
    });
    expect(cancel.status, await cancel.clone().text()).toBe(202);
    const until = Date.now() + 30_000;
    let canceled = '';
    while (Date.now() < until && canceled !== 'CANCELED') {
      canceled = (await getJson<{ status: string }>(`${s.apiUrl}/v1/payments/${approved}`, { headers: auth })).status;
      if (canceled !== 'CANCELED') await new Promise((r) => setTimeout(r, 200));
    }
    expect(canceled).toBe('CANCELED');

    // Every payment final, once, as the PG's ledger holds it.
    const after = await readPayments(s.redis, s.prefix, ids);
    const views = new Map([...after].map(([id, r]) => [id, { id, paymentKey: r.paymentKey!, status: r.status! }]));
    const ledger = (await getJson<{ payments: Record<string, LedgerEntry> }>(`${s.simUrl}/__sim/ledger`)).payments;
    const report = checkInvariants(ids, views, ledger);
    expect(report).toMatchObject({ lost: [], notFinal: [], doubleCharges: [], mismatches: [], final: 300 });
    expect(report.byStatus.FAILED).toBe(12);
    expect(ledger[after.get(approved)!.paymentKey!]?.status).toBe('CANCELED');

    // Each shard holds its own payments' state; the root holds none.
    const keys = await keysOf(s.redis, s.prefix);
    expect(keys.shards).toHaveLength(4);
    for (const [n, k] of keys.shards.entries()) {
      const mine = ids.filter((id) => shardOfPaymentId(id) === n);
      expect(await s.redis.exists(...mine.map((id) => k.payment(id)))).toBe(mine.length);
    }
    expect(await s.redis.exists(...ids.map((id) => `${s.prefix}:pay:${id}`))).toBe(0);

    // The books hold every payment (one drainer per shard's stream), at its final state.
    let rows: { id: string; status: string }[] = [];
    const booksUntil = Date.now() + 60_000;
    while (Date.now() < booksUntil) {
      rows = (await pool.query('SELECT id, status FROM payments WHERE id = ANY($1::text[])', [ids])).rows;
      if (rows.length === ids.length && rows.every((r) => r.status === after.get(r.id)?.status)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(rows.filter((r) => r.status !== after.get(r.id)?.status)).toEqual([]);
    expect(rows).toHaveLength(300);

    // The operator's views add the shards up.
    const admin = { authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}` };
    const data = await getJson<{ backlog: number; inDoubt: number; breaker: { state: string }; totals: Record<string, number> }>(`${s.apiUrl}/dashboard/data`, { headers: admin });
    expect([data.backlog, data.inDoubt, data.breaker.state]).toEqual([0, 0, 'closed']);
    const metrics = await (await fetch(`${s.apiUrl}/metrics`, { headers: admin })).text();
    expect(metrics).toMatch(/sluice_payments_created_total 300\b/);
    const sim = await getJson<{ status429: number; maxInWindow: number }>(`${s.simUrl}/__sim/stats`);
    expect(sim.status429).toBe(0);
    expect(sim.maxInWindow).toBeLessThanOrEqual(500);
  });
});
