/**
 * Ended calls come back gathered: several in one message, each with its own result, the calls'
 * reports heard before the results. The sender thread's death: every call from then on rejects at once (none waits for ever on a
 * thread that is gone), the owner hears of it once, and a close is not a death. The thread's
 * young generation is the worker's.
 */
import { randomUUID } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { testConfig, WORKER_YOUNG_GENERATION_MB } from '@sluice/config';
import { startSimulator } from '@sluice/pg-simulator';
import { afterAll, describe, expect, it } from 'vitest';
import type { FromSender } from './protocol.ts';
import { ThreadPg } from './thread-pg.ts';

const config = testConfig({ PG_BASE_URL: 'http://127.0.0.1:9', PG_SECRET_KEY: 'test_sk_x', REDIS_PREFIX: `test-${randomUUID()}` });
const threads: ThreadPg[] = [];
afterAll(async () => {
  await Promise.all(threads.map((t) => t.close()));
});

describe('ThreadPg', () => {
  it('rejects every call once its thread has died, and says so once', async () => {
    const deaths: Error[] = [];
    const pg = new ThreadPg(config, {}, (e) => deaths.push(e));
    threads.push(pg);
    await pg.ready;
    // The thread dies as an out-of-memory kill or a crash would end it: without being asked.
    const exited = new Promise((r) => (pg as unknown as { worker: Worker }).worker.once('exit', r));
    await (pg as unknown as { worker: Worker }).worker.terminate();
    await exited;
    expect(deaths).toHaveLength(1);
    expect(deaths[0]!.message).toMatch(/sender thread exited/);
    const late = await Promise.race([
      pg.inquire('pk_after_death').then(() => 'answered', (e: Error) => e.message),
      new Promise((r) => setTimeout(() => r('still waiting'), 2_000)),
    ]);
    expect(late).toMatch(/sender thread exited/);
  });

  it("runs the sender thread with the worker's young generation, not Node's default", async () => {
    const pg = new ThreadPg(config);
    threads.push(pg);
    await pg.ready;
    // V8's default for a thread is 48 MB (three 16 MB semi-spaces); the worker's is 192 (docs/perf.md).
    expect((pg as unknown as { worker: Worker }).worker.resourceLimits?.maxYoungGenerationSizeMb).toBe(WORKER_YOUNG_GENERATION_MB);
    expect(WORKER_YOUNG_GENERATION_MB).toBeGreaterThan(48);
  });

  it('is not a death when it was asked to close', async () => {
    const deaths: Error[] = [];
    const pg = new ThreadPg(config, {}, (e) => deaths.push(e));
    await pg.ready;
    await pg.close();
    expect(deaths).toEqual([]);
    await expect(pg.inquire('pk_after_close')).rejects.toThrow(/closed/);
  });

  it('posts the calls that ended together in one message, each its own result, reports first', async () => {
    const sim = await startSimulator({ latencyMedianMs: 5, latencyP99Ms: 10, seed: 3 });
    const pg = new ThreadPg({ ...config, PG_BASE_URL: sim.url, GATE_ENABLED: false, PG_SECRET_KEY: 'test_sk_sluice_demo' }, { onCall: (r) => heard.push(r.idempotencyKey ?? r.call) });
    const heard: string[] = [];
    const messages: FromSender[] = [];
    try {
      await pg.ready;
      (pg as unknown as { worker: Worker }).worker.on('message', (m: FromSender) => messages.push(m));
      const keys = Array.from({ length: 40 }, (_, i) => `pk_batch_${randomUUID()}_${i}`);
      const results = await Promise.all(keys.map(async (k, i) => {
        const r = await pg.confirm({ paymentKey: k, orderId: `order_${k}`, amount: 1_000 + i }, { idempotencyKey: randomUUID() });
        // Its report was heard before its result.
        return { r, reportsBefore: heard.length };
      }));
      for (const [i, { r, reportsBefore }] of results.entries()) {
        // Each call's own answer: the PG's approval of this payment key and amount.
        expect(r.refused).toBe(false);
        if (!r.refused) expect(r.raw).toMatchObject({ transport: 'answered', body: { paymentKey: keys[i], totalAmount: 1_000 + i } });
        expect(reportsBefore).toBeGreaterThan(0);
      }
      expect(heard).toHaveLength(40);
      const settled = messages.filter((m) => m.type === 'settled');
      expect(settled.flatMap((m) => (m.type === 'settled' ? m.replies.map((x) => x.id) : [])).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      // 40 calls sent at once, ending within a few milliseconds of each other: fewer messages than calls.
      expect(settled.length).toBeLessThan(20);
    } finally {
      await pg.close();
      await sim.close();
    }
  });
});
