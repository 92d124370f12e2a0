/**
 * Several PGs in one worker process, each a simulator of its own (port 0), over real Redis: a PG
 * that hangs holds only its own connections, queues and breaker; the other drains at its own
 * rate; nothing crosses from one PG to the other; and the hung one's payments end final and as
 * its ledger holds them once it answers again.
 */
import { testConfig, type Config } from '@sluice/config';
import { startSimulator, type RunningSimulator } from '@sluice/pg-simulator';
import { newPaymentId, type PaymentRecord } from '@sluice/store';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from './runtime.ts';

let simA: RunningSimulator;
let simB: RunningSimulator;
let worker: RunningWorker;
let config: Config;
const prefix = `test-${randomUUID()}`;

beforeAll(async () => {
  simA = await startSimulator({ latencyMedianMs: 5, latencyP99Ms: 20, seed: 11 });
  simB = await startSimulator({ latencyMedianMs: 5, latencyP99Ms: 20, seed: 12 });
  config = testConfig({
    PROVIDERS: JSON.stringify([
      { id: 'pga', baseUrl: simA.url, rateLimit: 100 },
      { id: 'pgb', baseUrl: simB.url, rateLimit: 50, connections: 30 },
    ]),
    REDIS_PREFIX: prefix,
    SWEEP_INTERVAL_MS: 1_000,
    RESOLVE_FIRST_INQUIRY_DELAY_MS: 200,
    RETRY_BACKOFF_BASE_MS: 200,
    RETRY_BACKOFF_MAX_MS: 1_000,
    BREAKER_OPEN_MS: 1_000,
    BREAKER_PROBE_INTERVAL_MS: 250,
    PG_HEADERS_TIMEOUT_MS: 800,
    PG_HEADERS_TIMEOUT_MIN_MS: 800,
  });
  worker = await startWorker(config, pino({ level: 'silent' }));
});
afterAll(async () => {
  for (const side of worker?.providers ?? []) {
    await side.queues.confirm.obliterate({ force: true }).catch(() => undefined);
    await side.queues.resolve.obliterate({ force: true }).catch(() => undefined);
  }
  await worker?.queues.maintenance.obliterate({ force: true }).catch(() => undefined);
  const keys = (await worker?.redis.keys(`${prefix}:*`)) ?? [];
  if (keys.length) await worker.redis.unlink(...keys);
  await worker?.close();
  await simA?.close();
  await simB?.close();
});

async function pay(provider: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = newPaymentId();
    const res = await worker.store.create(
      { id, merchantId: 'm1', provider, paymentKey: `pk_${provider}_${id.slice(-12)}`, orderId: `order-${id}`, amount: 1_000, currency: 'KRW', metadata: null, requestId: null, createdAt: Date.now() },
      `idem-${id}`, `fp-${id}`, '{}', 1_000_000,
    );
    expect(res.kind).toBe('created');
    ids.push(id);
  }
  return ids;
}

async function settle(ids: string[], timeoutMs: number): Promise<PaymentRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const recs = (await Promise.all(ids.map((id) => worker.store.get(id)))) as PaymentRecord[];
    if (recs.every((r) => r?.phase === 'final') || Date.now() > deadline) return recs;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('two PGs, one hanging', () => {
  it('the other drains at its own rate; nothing crosses; the hung one\'s payments end as its ledger holds them', async () => {
    expect(worker.providers.map((s) => s.provider.id)).toEqual(['pga', 'pgb']);
    simB.state.setKnobs({ outage: 'hang' });
    const b = await pay('pgb', 20);
    // Let pgb's confirms go out and hang, holding pgb's connections and jobs.
    await new Promise((r) => setTimeout(r, 500));
    const startedA = Date.now();
    const a = await pay('pga', 100);
    const recsA = await settle(a, 20_000);
    const tookA = Date.now() - startedA;
    expect(recsA.map((r) => r.status)).toEqual(Array(100).fill('APPROVED'));
    // 100 at pga's 100/s: about a second, however pgb is doing (generous for a loaded machine).
    expect(tookA).toBeLessThan(6_000);
    // pgb is still hung: none of its payments is approved yet.
    expect((await Promise.all(b.map((id) => worker.store.get(id)))).some((r) => r?.status === 'APPROVED')).toBe(false);

    simB.state.setKnobs({ outage: 'none' });
    const recsB = await settle(b, 60_000);
    expect(recsB.every((r) => r.phase === 'final')).toBe(true);

    // Every final state is the one its own PG holds, charged at most once; nothing crossed.
    const ledgerA = simA.state.ledgerView().payments;
    const ledgerB = simB.state.ledgerView().payments;
    for (const r of recsA) {
      expect(ledgerA[r.paymentKey]).toMatchObject({ status: 'DONE', chargeCount: 1 });
      expect(ledgerB[r.paymentKey]).toBeUndefined();
    }
    for (const r of recsB) {
      expect(ledgerA[r.paymentKey]).toBeUndefined();
      const held = ledgerB[r.paymentKey];
      expect(held?.chargeCount ?? 0).toBeLessThanOrEqual(1);
      if (r.status === 'APPROVED') expect(held).toMatchObject({ status: 'DONE', chargeCount: 1, refunded: false });
      else expect(held?.status === 'DONE' && !held.refunded).toBe(false);
    }
    // Each PG's breaker is its own: pga's never opened.
    expect(await worker.redis.hget(worker.providers[0]!.keys.breaker, 'state')).toBeNull();
  });
});
