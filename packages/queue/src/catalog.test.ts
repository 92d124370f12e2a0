/** The job catalog's retry policy, wired into a real BullMQ worker over real Redis. */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { confirmJobId, createQueues, JOB_OPTIONS, RETRY_BACKOFF, retryPolicy, WORKER_KEEP_JOBS, WORKER_SETTINGS } from './catalog.ts';

const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const prefix = `test-${randomUUID()}`;
afterAll(async () => {
  const keys = await connection.keys(`${prefix}:*`);
  if (keys.length) await connection.unlink(...keys);
  await connection.quit();
});

describe('job retries', () => {
  it('back off from 0.5 s, doubling, and never wait more than 30 s (50 attempts end within half an hour)', async () => {
    const wait = (n: number) => WORKER_SETTINGS.backoffStrategy!(n) as number;
    expect([1, 2, 3, 4, 5, 6, 7].map(wait)).toEqual([500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000]);
    expect(wait(49)).toBe(RETRY_BACKOFF.maxMs);
    const total = Array.from({ length: (JOB_OPTIONS.attempts ?? 1) - 1 }, (_, i) => wait(i + 1)).reduce((a, b) => a + b, 0);
    expect(total).toBeLessThan(30 * 60_000);
  });

  it('a worker with the catalog settings retries a failed job with that backoff', async () => {
    const q = new Queue('retry', { connection, prefix, defaultJobOptions: JOB_OPTIONS });
    const runs: number[] = [];
    const w = new Worker(
      'retry',
      retryPolicy(async () => {
        runs.push(Date.now());
        if (runs.length === 1) throw new Error('a Redis blip');
        return 'ok';
      }),
      { connection, prefix, settings: WORKER_SETTINGS, ...WORKER_KEEP_JOBS },
    );
    try {
      const job = await q.add('j', {});
      await expect.poll(async () => (await q.getJob(job.id!))?.finishedOn ?? 0, { timeout: 10_000, interval: 50 }).toBeGreaterThan(0);
      const done = await q.getJob(job.id!);
      expect(done!.returnvalue).toBe('ok');
      expect(done!.attemptsMade).toBe(2);
      expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(450);
      // Without the policy's backoff BullMQ would have retried at once.
      expect(runs[1]! - runs[0]!).toBeLessThan(RETRY_BACKOFF.baseMs * 4);
    } finally {
      await w.close();
      await q.close();
    }
  });
});

describe('a queued job', () => {
  it('is stored compactly: every value of its hash fits a listpack (≤ 64 bytes), so it costs a few hundred bytes', async () => {
    const queues = createQueues(connection, prefix);
    try {
      const paymentId = 'pay_0mxbnkqzu46388817fa2ba26a';
      await queues.confirm.addBulk([{ name: 'confirm', data: { paymentId }, opts: { jobId: confirmJobId(paymentId) } }]);
      const key = `${prefix}:confirm:${paymentId}`;
      const hash = await connection.hgetall(key);
      expect(JSON.parse(hash.opts!)).toEqual({ jobId: paymentId, attempts: JOB_OPTIONS.attempts });
      expect(Object.values(hash).every((v) => Buffer.byteLength(v) <= 64)).toBe(true);
      expect(await connection.object('ENCODING', key)).toBe('listpack');
      expect(Number(await connection.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))).toBeLessThan(400);
    } finally {
      await queues.close();
    }
  });
});
