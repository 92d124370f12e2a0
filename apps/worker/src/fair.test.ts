/**
 * The fair share end to end: a worker with its admitter against the simulator (at 50 calls/s),
 * one merchant flooding and another arriving behind it. Asserted on the PG's own ledger: the
 * order in which confirms reached it.
 */
import { newPaymentId } from '@sluice/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './test-harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({}, { PG_RATE_LIMIT: 50, ADMIT_LEAD_MS: 200 });
});
afterAll(async () => {
  await h?.close();
});

async function pay(merchantId: string, n: number): Promise<string[]> {
  const w = h.worker;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = newPaymentId();
    const res = await w.store.create(
      { id, merchantId, provider: 'default', paymentKey: `pk_fair_${merchantId}_${i}_${id.slice(-6)}`, orderId: `order-fair-${id}`, amount: 1_000, currency: 'KRW', metadata: null, requestId: null, createdAt: Date.now() },
      `idem-${id}`, `fp-${id}`, '{}', 1_000_000,
    );
    expect(res.kind).toBe('created');
    out.push(id);
  }
  return out;
}

describe('a merchant behind another merchant\'s flood', () => {
  it('reaches the PG within a few turns, not behind the flood; the flood is drained all the same', async () => {
    // Both merchants' payments are in their queues before admission starts, so that the order
    // does not depend on how fast this machine writes them.
    await h.worker.admitter.stop();
    const flood = await pay('flood', 150);
    const small = await pay('small', 4);
    h.worker.admitter.start();
    const recs = await h.settle([...flood, ...small], 60_000);
    expect(recs.every((r) => r.status === 'APPROVED')).toBe(true);

    const ledger = h.sim.state.ledgerView().payments as Record<string, { chargeCount: number; firstConfirmAt?: number | null }>;
    const firstAt = (id: string) => ledger[recs.find((r) => r.id === id)!.paymentKey]!.firstConfirmAt!;
    const order = [...flood, ...small].sort((a, b) => firstAt(a) - firstAt(b));
    const places = small.map((id) => order.indexOf(id));
    // FIFO would put them at 150–153. Fair: turns alternate from the first admission, so the
    // small merchant's four are among the first eight admitted (a lead of 10); jobs admitted
    // together race to the PG, so on a loaded machine they arrive within a few leads.
    expect(Math.max(...places)).toBeLessThan(40);
    // Everyone charged exactly once.
    expect(recs.every((r) => ledger[r.paymentKey]?.chargeCount === 1)).toBe(true);
    // Both merchants' queues drained: nobody left in the ring, nothing admitted and unsent.
    const fair = h.worker.store.keys.fair('default');
    expect(await h.worker.redis.llen(fair.ring)).toBe(0);
    expect(await h.worker.redis.zcard(fair.admitted)).toBe(0);
  });
});
