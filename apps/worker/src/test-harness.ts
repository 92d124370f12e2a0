/**
 * Test support: a simulator on port 0, a worker in this process with its own key prefix, and
 * helpers to create payments straight into the store and wait for them to end. Not a test file.
 */
import { testConfig, type Config } from '@sluice/config';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '@sluice/pg-simulator';
import { newPaymentId, type PaymentRecord } from '@sluice/store';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { startWorker, type RunningWorker } from './runtime.ts';

/** A worker in this process against a simulator on port 0, under a fresh key prefix: for the worker's integration tests. */
export interface Harness {
  sim: RunningSimulator;
  worker: RunningWorker;
  config: Config;
  /** Creates a payment as the intake would (the worker admits it and sends it). Returns its id. */
  pay(paymentKey: string, amount?: number): Promise<string>;
  /** Waits until every id is final (or the timeout), and returns the records. */
  settle(ids: string[], timeoutMs?: number): Promise<PaymentRecord[]>;
  ledger(): Record<string, { status: string; chargeCount: number; refunded: boolean; confirmArrivals: number; confirmKeys: number }>;
  close(): Promise<void>;
}

/** Starts a simulator and a worker with test settings (`env` on top); `close()` removes every key it wrote. */
export async function startHarness(sim: Partial<SimulatorOptions> = {}, env: Record<string, string | number | boolean> = {}): Promise<Harness> {
  const simulator = await startSimulator({ latencyMedianMs: 5, latencyP99Ms: 20, seed: 7, ...sim });
  const prefix = `test-${randomUUID()}`;
  const config = testConfig({
    PG_BASE_URL: simulator.url,
    PG_SECRET_KEY: 'test_sk_sluice_demo',
    REDIS_PREFIX: prefix,
    SWEEP_INTERVAL_MS: 1_000,
    RESOLVE_FIRST_INQUIRY_DELAY_MS: 200,
    RETRY_BACKOFF_BASE_MS: 200,
    RETRY_BACKOFF_MAX_MS: 2_000,
    BREAKER_OPEN_MS: 1_000,
    BREAKER_PROBE_INTERVAL_MS: 250,
    PG_HEADERS_TIMEOUT_MS: 1_000,
    ...env,
  });
  const worker = await startWorker(config, pino({ level: 'silent' }));
  let n = 0;
  const harness: Harness = {
    sim: simulator,
    worker,
    config,
    async pay(paymentKey, amount = 1_000) {
      const id = newPaymentId();
      const res = await worker.store.create(
        { id, merchantId: 'm1', provider: config.PG_PROVIDER, paymentKey, orderId: `order-${prefix.slice(5, 13)}-${++n}`, amount, currency: 'KRW', metadata: null, requestId: `req-${n}`, createdAt: Date.now() },
        `idem-${id}`, `fp-${id}`, '{}', 1_000_000,
      );
      if (res.kind !== 'created') throw new Error(`create: ${res.kind}`);
      return id;
    },
    async settle(ids, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const recs = await Promise.all(ids.map((id) => worker.store.get(id)));
        if (recs.every((r) => r?.phase === 'final') || Date.now() > deadline) return recs.map((r, i) => r ?? ({ id: ids[i], status: 'MISSING' } as unknown as PaymentRecord));
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    ledger() {
      return simulator.state.ledgerView().payments;
    },
    async close() {
      await worker.queues.confirm.obliterate({ force: true }).catch(() => undefined);
      await worker.queues.resolve.obliterate({ force: true }).catch(() => undefined);
      await worker.queues.maintenance.obliterate({ force: true }).catch(() => undefined);
      const keys = await worker.redis.keys(`${prefix}:*`);
      await worker.close();
      await simulator.close();
      if (keys.length) {
        const { Redis } = await import('ioredis');
        const r = new Redis(config.REDIS_URL);
        const rest = await r.keys(`${prefix}:*`);
        if (rest.length) await r.unlink(...rest);
        r.disconnect();
      }
    },
  };
  return harness;
}
