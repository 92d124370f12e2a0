/**
 * Reconciliation against the simulator's book: matches, a recorded repair, and an orphan that is
 * recorded but never touched.
 */
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify } from '@sluice/domain';
import { expected, heldBy, Reconciler } from './reconciler.ts';
import { startHarness, type Harness } from './test-harness.ts';
import type { PgPort } from './sender/pg-port.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({}, { RECONCILE_INTERVAL_MS: 3_600_000 });
});
afterAll(async () => {
  await h?.close();
});

describe('reconciliation', () => {
  it('matches a clean book with 0 repairs', async () => {
    const ids = await Promise.all(['pk_rc_1', 'pk_rc_2', 'sim_decline_rc3'].map((k) => h.pay(k)));
    await h.settle(ids);
    const report = await h.worker.reconciler.run();
    expect(report).toMatchObject({ complete: true, repaired: 0, orphans: 0, unresolved: 0 });
    expect(report.matched).toBe(2);
    expect(report.pgRows).toBe(2);
  });

  it('repairs a payment Sluice shows FAILED while the PG charged it: cancel at the PG, record, count', async () => {
    const id = await h.pay('pk_rc_bad');
    await h.settle([id]);
    // Simulate the bug reconciliation exists for.
    await h.worker.redis.hset(h.worker.store.keys.payment(id), 'status', 'FAILED');
    const report = await h.worker.reconciler.run();
    expect(report.repaired).toBe(1);
    const rec = await h.worker.store.get(id);
    expect(rec).toMatchObject({ status: 'CANCELED', failure: { code: 'RECONCILED' } });
    expect(h.ledger()['pk_rc_bad']).toMatchObject({ status: 'CANCELED', chargeCount: 1, refunded: true });
    const history = await h.worker.store.history(id);
    expect(history.at(-1)).toMatchObject({ repair: 'FAILED -> CANCELED' });
    expect((await h.worker.store.counters())['recon:repaired']).toBe(1);
    // Run again: now it matches.
    expect((await h.worker.reconciler.run()).repaired).toBe(0);
  });

  it('records an orphan charge and never touches it', async () => {
    const pool = new Pool(h.sim.url);
    const res = await pool.request({
      method: 'POST', path: '/v1/payments/confirm',
      headers: { authorization: `Basic ${Buffer.from('test_sk_sluice_demo:').toString('base64')}`, 'content-type': 'application/json', 'idempotency-key': 'outside' },
      body: JSON.stringify({ paymentKey: 'pk_orphan', orderId: 'order-orphan-1', amount: 500 }),
    });
    await res.body.text();
    await pool.close();
    const report = await h.worker.reconciler.run();
    expect(report.orphans).toBe(1);
    expect(await h.worker.redis.hexists(h.worker.store.keys.orphans, 'pk_orphan')).toBe(1);
    expect(h.ledger()['pk_orphan']).toMatchObject({ status: 'DONE', chargeCount: 1, refunded: false });
  });

  it('checks an approval the book never showed with the PG, and follows the PG (here: nothing held → FAILED)', async () => {
    const id = await h.pay('sim_nosession_rc_ghost');
    await h.settle([id]);
    // Pretend Sluice had recorded an approval the PG never made.
    await h.worker.redis.hset(h.worker.store.keys.payment(id), 'status', 'APPROVED');
    await h.worker.redis.zadd(h.worker.store.keys.approved, Date.now() - 120_000, id);
    const strict = new Reconciler({ pg: h.worker.pg, store: h.worker.store, transitions: h.worker.transitions, log: h.worker.log }, { lookbackMs: 600_000, settleMs: 0 });
    const report = await strict.run();
    expect(report.repaired).toBe(1);
    expect((await h.worker.store.get(id))!.status).toBe('FAILED');
    expect(await h.worker.redis.zscore(h.worker.store.keys.approved, id)).toBeNull();
  });

  it('follows the equivalence', () => {
    expect(expected('APPROVED', 'DONE')).toBeNull();
    expect(expected('FAILED', 'DONE')).toBe('CANCELED');
    expect(expected('APPROVED', 'CANCELED')).toBe('CANCELED');
    expect(expected('CANCELED', 'NOTHING')).toBeNull();
    expect(expected('FAILED', 'NOTHING')).toBeNull();
    expect(expected('FAILED', 'ABORTED')).toBeNull();
    expect(expected('DECLINED', 'ABORTED')).toBeNull();
    expect(expected('APPROVED', 'NOTHING')).toBe('FAILED');
  });

  it('takes only a definite inquiry answer as what the PG holds', () => {
    const answer = (httpStatus: number, body: unknown) => heldBy(classify('inquire', { transport: 'answered', httpStatus, body }));
    expect(answer(200, { paymentKey: 'pk', status: 'DONE' })).toBe('DONE');
    expect(answer(200, { paymentKey: 'pk', status: 'CANCELED' })).toBe('CANCELED');
    expect(answer(200, { paymentKey: 'pk', status: 'ABORTED' })).toBe('ABORTED');
    expect(answer(404, { code: 'NOT_FOUND_PAYMENT', message: 'no' })).toBe('NOTHING');
    // An odd 4xx, a session error, an unknown 5xx, a 401, no answer: not known, so no repair.
    expect(answer(400, { code: 'INVALID_REQUEST', message: 'bad' })).toBeNull();
    expect(answer(404, { code: 'NOT_FOUND_PAYMENT_SESSION', message: 'expired' })).toBeNull();
    expect(answer(413, { code: 'X', message: 'big' })).toBeNull();
    expect(answer(504, 'gateway timeout')).toBeNull();
    expect(answer(401, { code: 'UNAUTHORIZED_KEY', message: 'no' })).toBeNull();
    expect(heldBy(classify('inquire', { transport: 'no_answer', reason: 'UND_ERR_HEADERS_TIMEOUT' }))).toBeNull();
  });

  /** The real port, with its book replaced by `rows` and its pages and inquiries counted. */
  function fakeBook(rows: () => unknown[]) {
    const book = Object.create(h.worker.pg) as PgPort;
    const seen = { pages: 0, inquiries: 0 };
    book.transactions = async () => {
      seen.pages++;
      return { refused: false, outcome: { kind: 'in_doubt', reason: 'list', alert: false }, raw: { transport: 'answered', httpStatus: 200, body: rows() } } as never;
    };
    book.inquire = async (...a: Parameters<PgPort['inquire']>) => {
      seen.inquiries++;
      return h.worker.pg.inquire(...a);
    };
    const run = () => new Reconciler({ pg: book, store: h.worker.store, transitions: h.worker.transitions, log: h.worker.log }, { lookbackMs: 60_000, settleMs: 3_600_000 }).run();
    return { seen, run };
  }
  const oddRow = (paymentKey: string, transactionKey: string | undefined) => ({ transactionKey, paymentKey, status: 'PARTIAL_CANCELED', transactionAt: new Date().toISOString() });

  it('checks a book row of an unknown kind with the PG instead of counting it a match', async () => {
    // DECLINED at Sluice, ABORTED at the PG: a row of an unknown kind must not pass as agreeing.
    const id = await h.pay('sim_decline_rc_odd');
    await h.settle([id]);
    const { seen, run } = fakeBook(() => [oddRow('sim_decline_rc_odd', 'tx-odd-0')]);
    const report = await run();
    expect(seen.inquiries).toBe(1);
    expect(report).toMatchObject({ complete: true, matched: 1, repaired: 0 });
    expect((await h.worker.store.get(id))!.status).toBe('DECLINED');
  });

  it('stops paging (run incomplete) when a full page ends without a key to go on from', async () => {
    const id = await h.pay('sim_decline_rc_nokey');
    await h.settle([id]);
    const { seen, run } = fakeBook(() => Array.from({ length: 1_000 }, (_, i) => oddRow('sim_decline_rc_nokey', i === 999 ? undefined : `tx-nokey-${i}`)));
    expect(await run()).toMatchObject({ complete: false, matched: 0 });
    expect(seen).toEqual({ pages: 1, inquiries: 0 });
  });
});
