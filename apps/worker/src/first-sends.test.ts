/**
 * First sends under the outbox marker's lease (first-sends.ts): a payment admitted here is sent
 * without a job of its own; its marker is renewed while its confirm is at the PG, so the sweeper
 * leaves a slow one alone; a marker nobody renews (its worker died) is turned into a confirm job,
 * which sends the payment once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FairShare } from '@sluice/store';
import { OUTBOX_LEASE_MS } from './first-sends.ts';
import { startHarness, type Harness } from './test-harness.ts';

let h: Harness;
beforeAll(async () => {
  // Every answer takes 4.5–5 s: longer than the lease, and than a sweep's interval after it.
  h = await startHarness({ latencyMedianMs: 4_600, latencyP99Ms: 5_000 }, { PG_HEADERS_TIMEOUT_MS: 10_000 });
});
afterAll(async () => {
  await h?.close();
});

describe('first sends', () => {
  it('sends an admitted payment without a confirm job, and renews its marker while the PG holds it', async () => {
    const id = await h.pay('pk_first_send_slow');
    const outbox = h.worker.store.keys.outbox;
    await expect.poll(async () => h.worker.sends.inFlightIds().includes(id), { timeout: 5_000, interval: 20 }).toBe(true);
    const admittedAt = Number(await h.worker.redis.zscore(outbox, id));
    expect(admittedAt).toBeGreaterThan(0);
    // Past the lease and a sweep: the marker was renewed, so the sweeper added no job.
    await new Promise((r) => setTimeout(r, OUTBOX_LEASE_MS + 500));
    expect(Number(await h.worker.redis.zscore(outbox, id))).toBeGreaterThan(admittedAt);
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(await h.worker.queues.confirm.getJob(id)).toBeUndefined();
    // Its marker is gone once the step has ended.
    await expect.poll(async () => h.worker.redis.zscore(outbox, id), { timeout: 2_000 }).toBeNull();
    expect(h.ledger()['pk_first_send_slow']).toMatchObject({ status: 'DONE', chargeCount: 1, confirmArrivals: 1, confirmKeys: 1 });
  });

  it('a marker nobody renews (its worker died after admitting) becomes a confirm job, which sends the payment once', async () => {
    const w = h.worker;
    await w.admitter.stop();
    let id: string;
    try {
      id = await h.pay('pk_first_send_orphan');
      // Admitted as a worker that dies at once would leave it: the marker, and nobody driving it.
      expect(await new FairShare(w.redis, w.store.keys).admit(1_000, 1_000, 60_000)).toEqual([id]);
    } finally {
      w.admitter.start();
    }
    expect(w.sends.inFlightIds()).not.toContain(id);
    // The sweeper takes it once the marker is older than the lease.
    await expect.poll(async () => w.queues.confirm.getJob(id), { timeout: OUTBOX_LEASE_MS + 5_000, interval: 100 }).toBeDefined();
    const [rec] = await h.settle([id]);
    expect(rec!.status).toBe('APPROVED');
    expect(await w.redis.zscore(w.store.keys.outbox, id)).toBeNull();
    expect(h.ledger()['pk_first_send_orphan']).toMatchObject({ status: 'DONE', chargeCount: 1, confirmArrivals: 1 });
  });
});
