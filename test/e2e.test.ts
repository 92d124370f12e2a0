/**
 * End to end over real processes: the simulator, the API and a worker. 200 payments through the
 * API, polled until final, each final state checked against the simulator's ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants, type LedgerEntry } from '@sluice/test-support';
import { getJson } from '@sluice/test-support';
import { DEMO_KEY, postPayment, startStack, type Stack } from './support/stack.ts';

let s: Stack;
beforeAll(async () => {
  s = await startStack({ sim: { SIM_LATENCY_MEDIAN_MS: '30', SIM_LATENCY_P99_MS: '300', SIM_DECLINE_RATE: '0.1' } });
});
afterAll(async () => {
  await s?.stop();
});

describe('end to end', () => {
  it('200 payments: all 202, all final when polled, each matching the PG ledger', async () => {
    const run = Date.now().toString(36);
    const posts = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const paymentKey = i % 20 === 0 ? `sim_nosession_${run}_${i}` : `pk_${run}_${i}`;
        return postPayment(s.apiUrl, { paymentKey, orderId: `order-${run}-${i}`, amount: 1_000 + i }, `e2e-${run}-${i}`);
      }),
    );
    expect(posts.map((p) => p.status)).toEqual(Array(200).fill(202));
    const ids = posts.map((p) => p.body.id);

    const final = new Map<string, { id: string; paymentKey: string; status: string }>();
    const deadline = Date.now() + 60_000;
    while (final.size < ids.length && Date.now() < deadline) {
      for (const id of ids.filter((x) => !final.has(x))) {
        const p = await getJson<{ id: string; paymentKey: string; status: string }>(`${s.apiUrl}/v1/payments/${id}`, { headers: { authorization: `Bearer ${DEMO_KEY}` } });
        if (['APPROVED', 'DECLINED', 'FAILED', 'CANCELED'].includes(p.status)) final.set(id, p);
      }
      if (final.size < ids.length) await new Promise((r) => setTimeout(r, 300));
    }
    const ledger = (await getJson<{ payments: Record<string, LedgerEntry> }>(`${s.simUrl}/__sim/ledger`)).payments;
    const report = checkInvariants(ids, final, ledger);
    expect(report.lost).toEqual([]);
    expect(report.notFinal).toEqual([]);
    expect(report.final).toBe(200);
    expect(report.doubleCharges).toEqual([]);
    expect(report.mismatches).toEqual([]);
    expect(report.byStatus.FAILED).toBe(10);
    expect(report.byStatus.APPROVED).toBeGreaterThan(140);
    expect(report.byStatus.DECLINED).toBeGreaterThan(0);
  });
});
