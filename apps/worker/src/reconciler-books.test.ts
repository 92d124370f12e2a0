/**
 * Reconciliation reads Sluice's side from the books when Redis has forgotten a payment: it puts
 * the payment back for the hot window and checks and repairs it on the usual path, whose repair
 * reaches the books in turn.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BooksWriter } from '@sluice/books';
import { useTestDatabase } from '@sluice/books/testing';
import { BooksStream } from '@sluice/store';
import { startHarness, type Harness } from './test-harness.ts';

const db = useTestDatabase();
let h: Harness;
beforeAll(async () => {
  h = await startHarness({}, { RECONCILE_INTERVAL_MS: 3_600_000, DATABASE_URL: db.url });
});
afterAll(async () => {
  await h?.close();
});

/** Writes every change in the books stream to the books, as the drainer would. */
async function drain(): Promise<void> {
  await new BooksWriter(db.pool).apply(await new BooksStream(h.worker.redis, h.worker.store.keys).allChanges());
}

describe('reconciliation with the books', () => {
  it('repairs a payment only the books still hold, and the repair reaches the books', async () => {
    const id = await h.pay('pk_rcb_forgotten');
    await h.settle([id]);
    await drain();
    // The bug reconciliation exists for, in the books' copy; then Redis forgets the payment.
    await db.pool.query(`UPDATE payments SET status = 'FAILED', snapshot = jsonb_set(snapshot, '{status}', '"FAILED"') WHERE id = $1`, [id]);
    const k = h.worker.store.keys;
    await h.worker.redis.del(k.payment(id), k.history(id), k.byPaymentKey('pk_rcb_forgotten'));
    await h.worker.redis.zrem(k.approved, id);

    const report = await h.worker.reconciler.run();
    expect(report).toMatchObject({ repaired: 1, orphans: 0 });
    // Put back for the hot window, repaired on the usual path: cancelled at the PG, CANCELED.
    expect(await h.worker.store.get(id)).toMatchObject({ status: 'CANCELED', failure: { code: 'RECONCILED' } });
    expect(await h.worker.redis.pttl(k.payment(id))).toBeGreaterThan(0);
    expect(h.ledger()['pk_rcb_forgotten']).toMatchObject({ status: 'CANCELED', chargeCount: 1, refunded: true });
    await drain();
    const row = (await db.pool.query('SELECT status FROM payments WHERE id = $1', [id])).rows[0];
    expect(row.status).toBe('CANCELED');
    // The run itself is in the books.
    const runs = await db.pool.query(`SELECT report->>'repaired' AS repaired FROM reconciliation_runs ORDER BY id DESC LIMIT 1`);
    expect(runs.rows[0].repaired).toBe('1');
  });
});
