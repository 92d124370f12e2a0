/**
 * The books on the real PostgreSQL: the migration, the writer's idempotency and ordering (a
 * change applied twice changes nothing; an older version never overwrites a newer one), claims,
 * partitions by month, and the reads the API makes.
 */
import { describe, expect, it } from 'vitest';
import { startTcpProxy } from '@sluice/test-support';
import { booksPool } from './db.ts';
import type { CallChange, PaymentChange, RunChange } from '@sluice/domain';
import { BooksReader } from './reader.ts';
import { useTestDatabase } from './test-database.ts';
import { BooksWriter } from './writer.ts';

const db = useTestDatabase();
let entry = 0;

function change(id: string, version: number, over: Record<string, string> = {}, createdAt = Date.UTC(2026, 11, 6, 10)): PaymentChange {
  const snapshot: Record<string, string> = {
    id, merchantId: 'm_a', paymentKey: `pk_${id}`, orderId: `order-${id}`, amount: '15000', currency: 'KRW',
    status: 'QUEUED', phase: 'queued', createdAt: String(createdAt), updatedAt: String(createdAt + version), attempts: '0', pgCalls: '0', v: String(version),
    ...over,
  };
  return { kind: 'payment', entryId: `${Date.now()}-${++entry}`, id, version, snapshot, event: { at: createdAt + version, from: 'queued' }, intakeBody: version === 1 ? `{"id":"${id}"}` : null };
}

const row = async (id: string) => (await db.pool.query('SELECT status, version, intake_body, snapshot FROM payments WHERE id = $1', [id])).rows[0];

describe('the books', () => {
  it('applies a change twice as once, and never lets an older version overwrite a newer one', async () => {
    const w = new BooksWriter(db.pool);
    const v1 = change('pay_a', 1);
    const v2 = change('pay_a', 2, { status: 'PROCESSING', phase: 'confirming', attempts: '1' });
    const v3 = change('pay_a', 3, { status: 'APPROVED', phase: 'final', attempts: '1', finalizedAt: String(Date.UTC(2026, 11, 6, 10, 0, 1)), transactionKey: 'tx_1' });
    await w.apply([v3]);
    await w.apply([v1, v2]); // late and out of order: the body lands, the state stays at v3
    await w.apply([v3, v1]); // again
    const r = await row('pay_a');
    expect([r.status, Number(r.version), r.intake_body, r.snapshot.transactionKey]).toEqual(['APPROVED', 3, '{"id":"pay_a"}', 'tx_1']);
    const events = await db.pool.query('SELECT version, to_phase, status FROM payment_events WHERE payment_id = $1 ORDER BY version', ['pay_a']);
    expect(events.rows.map((e) => [Number(e.version), e.to_phase, e.status])).toEqual([
      [1, 'queued', 'QUEUED'],
      [2, 'confirming', 'PROCESSING'],
      [3, 'final', 'APPROVED'],
    ]);
  });

  it('stores PG calls once per stream entry', async () => {
    const w = new BooksWriter(db.pool);
    const call: CallChange = { kind: 'call', entryId: '1-1', at: Date.UTC(2026, 11, 6), paymentId: 'pay_a', call: 'confirm', idempotencyKey: 'sluice.pay_a.confirm', outcome: 'approved', httpStatus: 200, latencyMs: 151.6 };
    await w.apply([call]);
    await w.apply([call]);
    const r = await db.pool.query('SELECT call, idempotency_key, http_status, latency_ms FROM pg_calls WHERE payment_id = $1', ['pay_a']);
    expect(r.rows).toEqual([{ call: 'confirm', idempotency_key: 'sluice.pay_a.confirm', http_status: 200, latency_ms: 152 }]);
  });

  it('keeps each month in its own partition, made when first needed', async () => {
    const w = new BooksWriter(db.pool);
    await w.apply([change('pay_jan', 1, {}, Date.UTC(2027, 0, 31, 23, 59)), change('pay_feb', 1, {}, Date.UTC(2027, 1, 1, 0, 0))]);
    const parts = await db.pool.query(`SELECT tableoid::regclass::text AS part, id FROM payments WHERE id IN ('pay_jan', 'pay_feb') ORDER BY id`);
    expect(parts.rows).toEqual([
      { part: 'payments_2027_02', id: 'pay_feb' },
      { part: 'payments_2027_01', id: 'pay_jan' },
    ]);
  });

  it('holds claims for good, and drops those a payment released', async () => {
    const w = new BooksWriter(db.pool);
    await w.apply([change('pay_c1', 1, { orderId: 'order-shared' })]);
    await w.apply([change('pay_c2', 1, { orderId: 'order-shared' })]);
    const claim = async () => (await db.pool.query(`SELECT payment_id FROM order_claims WHERE order_id = 'order-shared'`)).rows[0]?.payment_id;
    expect(await claim()).toBe('pay_c1');
    await w.apply([change('pay_c1', 2, { orderId: 'order-shared', status: 'FAILED', phase: 'final', claimsReleased: '1' }), change('pay_c2', 2, { orderId: 'order-shared' })]);
    expect(await claim()).toBe('pay_c2');
    const reader = new BooksReader(db.pool);
    expect((await reader.byOrderId('order-shared'))?.snapshot.id).toBe('pay_c2');
  });

  it('reads a payment by id (pruned to its month), lists with a cursor, and sums by day', async () => {
    const w = new BooksWriter(db.pool);
    const day = Date.UTC(2026, 10, 3, 12);
    const batch = Array.from({ length: 5 }, (_, i) =>
      change(`pay_l${i}`, 2, { merchantId: 'm_list', status: i < 3 ? 'APPROVED' : 'DECLINED', phase: 'final', amount: String(1000 * (i + 1)) }, day + i),
    );
    await w.apply(batch);
    await w.apply([change('pay_other', 1, { merchantId: 'm_other' }, day)]);
    const reader = new BooksReader(db.pool);
    expect((await reader.byId('pay_l2', day + 2))?.snapshot.amount).toBe('3000');
    expect(await reader.byId('pay_l2', day + 3)).toBeNull();

    const first = await reader.list('m_list', { limit: 2 });
    expect([first.payments.map((p) => p.id), first.hasMore]).toEqual([['pay_l4', 'pay_l3'], true]);
    const next = await reader.list('m_list', { limit: 2, startingAfter: 'pay_l3' });
    expect(next.payments.map((p) => p.id)).toEqual(['pay_l2', 'pay_l1']);
    const approved = await reader.list('m_list', { limit: 10, status: 'APPROVED', createdFrom: day, createdTo: day + 2 });
    expect(approved.payments.map((p) => p.id)).toEqual(['pay_l1', 'pay_l0']);

    const summary = await reader.dailySummary('m_list', Date.UTC(2026, 10, 3), Date.UTC(2026, 10, 4));
    expect(summary).toEqual([
      { day: '2026-11-03', approved: { count: 3, amount: 6000 }, declined: { count: 2, amount: 9000 }, failed: { count: 0, amount: 0 }, canceled: { count: 0, amount: 0 }, open: { count: 0, amount: 0 }, refunded: { count: 0, amount: 0 } },
    ]);
  });

  it('stores each reconciliation run once, with its findings', async () => {
    const w = new BooksWriter(db.pool);
    const run: RunChange = {
      kind: 'run', entryId: '9-1', at: Date.UTC(2026, 11, 6, 10, 1),
      report: { from: '2026-12-06T09:51:00.000Z', to: '2026-12-06T10:01:00.000Z', pgRows: 3, orphans: 1, repaired: 1 },
      findings: [
        { paymentId: null, kind: 'orphan', detail: { paymentKey: 'pk_x' } },
        { paymentId: 'pay_a', kind: 'repaired', detail: { from: 'FAILED', to: 'APPROVED' } },
      ],
    };
    await w.apply([run]);
    await w.apply([run]);
    const runs = await db.pool.query(`SELECT id, report->>'orphans' AS orphans FROM reconciliation_runs WHERE entry_id = '9-1'`);
    expect(runs.rows).toHaveLength(1);
    const findings = await db.pool.query('SELECT payment_id, kind FROM reconciliation_findings WHERE run_id = $1 ORDER BY kind', [runs.rows[0].id]);
    expect(findings.rows).toEqual([{ payment_id: null, kind: 'orphan' }, { payment_id: 'pay_a', kind: 'repaired' }]);
  });

  it('a connection cut in the middle of a batch fails the batch, and nothing else', async () => {
    const proxy = await startTcpProxy(Number(new URL(db.url).port || 5432));
    const url = new URL(db.url);
    url.host = `127.0.0.1:${proxy.port}`;
    const pool = booksPool(url.toString());
    const w = new BooksWriter(pool);
    try {
      const batch = Array.from({ length: 3_000 }, (_, i) => change(`pay_cut${i}`, 1));
      const applying = w.apply(batch);
      setTimeout(() => proxy.down(), 15);
      await expect(applying).rejects.toThrow();
      proxy.up();
      // The same batch again, once the database answers: written whole.
      await w.apply(batch);
      const n = await db.pool.query(`SELECT count(*)::int AS n FROM payments WHERE id LIKE 'pay_cut%'`);
      expect(n.rows[0].n).toBe(3_000);
    } finally {
      await pool.end();
      await proxy.close();
    }
  });
});
