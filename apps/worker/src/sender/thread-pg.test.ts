/**
 * The sender thread's death: every call from then on rejects at once (none waits for ever on a
 * thread that is gone), the owner hears of it once, and a close is not a death.
 */
import { randomUUID } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { testConfig } from '@sluice/config';
import { afterAll, describe, expect, it } from 'vitest';
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

  it('is not a death when it was asked to close', async () => {
    const deaths: Error[] = [];
    const pg = new ThreadPg(config, {}, (e) => deaths.push(e));
    await pg.ready;
    await pg.close();
    expect(deaths).toEqual([]);
    await expect(pg.inquire('pk_after_close')).rejects.toThrow(/closed/);
  });
});
