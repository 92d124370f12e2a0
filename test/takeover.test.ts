/**
 * A worker process killed with SIGKILL while it holds payments (their confirms at the PG, still
 * being approved): a new worker process takes them over once their short job locks lapse, and
 * finishes them. The PG's ledger must show at most one approval per paymentKey, every confirm of
 * a payment under the same Idempotency-Key, and every final state equal to the PG's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants, type LedgerEntry } from '@sluice/test-support';
import { getJson } from '@sluice/test-support';
import { drain, postPayment, readPayments, startStack, type Stack } from './support/stack.ts';

let s: Stack;
beforeAll(async () => {
  // Approvals of 1–3 s, so that the worker holds many payments mid-approval when it dies.
  s = await startStack({ workers: 1, sim: { SIM_LATENCY_MEDIAN_MS: '1500', SIM_LATENCY_P99_MS: '3000', SIM_SEED: '3' } });
});
afterAll(async () => {
  await s?.stop();
});

type Ledger = Record<string, LedgerEntry & { confirmArrivals: number; confirmKeys: number }>;

describe('takeover after kill -9', () => {
  it('a new worker finishes the dead one\'s payments: one approval and one key per payment, every final state as the PG holds it', async () => {
    const run = Date.now().toString(36);
    const ids: string[] = [];
    for (let i = 0; i < 150; i++) {
      const r = await postPayment(s.apiUrl, { paymentKey: `pk_tk_${run}_${i}`, orderId: `order-tk-${run}-${i}`, amount: 1_000 }, `tk-${run}-${i}`);
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    // Kill the worker while many confirms are mid-approval at the PG.
    const ledgerNow = async () => (await getJson<{ payments: Ledger }>(`${s.simUrl}/__sim/ledger`)).payments;
    await expect.poll(async () => Object.values(await ledgerNow()).filter((p) => p.status === 'IN_PROGRESS').length, { timeout: 20_000, interval: 50 }).toBeGreaterThanOrEqual(50);
    await s.workers[0]!.stop('SIGKILL');
    const held = Object.values(await ledgerNow()).filter((p) => p.status === 'IN_PROGRESS').length;
    const restartedAt = Date.now();
    await s.startWorker();

    const drainMs = await drain(s.redis, s.prefix, 60_000);
    const records = await readPayments(s.redis, s.prefix, ids);
    const views = new Map([...records].map(([id, r]) => [id, { id, paymentKey: r.paymentKey!, status: r.status! }]));
    const ledger = await ledgerNow();
    const report = checkInvariants(ids, views, ledger);
    console.log('takeover', { held, finalAfterRestartMs: Date.now() - restartedAt, drainMs, byStatus: report.byStatus });

    expect(held).toBeGreaterThan(0);
    expect(report.lost).toEqual([]);
    expect(report.notFinal).toEqual([]);
    expect(report.doubleCharges).toEqual([]);
    expect(report.mismatches).toEqual([]);
    expect(report.byStatus).toEqual({ APPROVED: 150 });
    for (const r of records.values()) {
      const pg = ledger[r.paymentKey!]!;
      expect(pg.chargeCount, r.paymentKey).toBe(1);
      expect(pg.confirmKeys, r.paymentKey).toBe(1);
    }
    // Some payments were confirmed by both processes: the dead one's try and the new one's repeat.
    expect(Object.values(ledger).some((p) => p.confirmArrivals > 1)).toBe(true);
  });
});
