/**
 * The CPU section's yardstick: the gateway anyone would write first with Express and BullMQ, in
 * two processes like Sluice's. The intake checks the bearer key's presence, parses the JSON,
 * adds one BullMQ job (id: the Idempotency-Key) and answers 202. The worker sends each job's
 * confirm to the PG through BullMQ's limiter (500 per 1,000 ms) and completes the job with the
 * PG's status. No idempotency records, no claims, no fair share, no gate, no in-doubt handling,
 * no books: what Sluice's CPU per payment buys is measured against this.
 *
 * `node --import tsx apps/bench/src/profiles/naive-gateway.ts` with NAIVE_ROLE (api | worker),
 * REDIS_URL, NAIVE_PREFIX, and PORT (api) or PG_BASE_URL and PG_SECRET_KEY (worker); it prints
 * `naive <role> ready [port]` once it serves.
 */
import express from 'express';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { Pool } from 'undici';

const role = process.env.NAIVE_ROLE;
const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const prefix = process.env.NAIVE_PREFIX ?? 'naive';
// Completed jobs kept as Sluice's workers keep them (WORKER_KEEP_JOBS in packages/queue), so that
// Redis's cost compares like for like; the yardstick imports nothing of Sluice's.
const KEEP = { removeOnComplete: { age: 300, count: 2_000 } };

if (role === 'api') {
  const queue = new Queue('confirm', { connection, prefix });
  const app = express();
  app.post('/v1/payments', express.json(), async (req, res) => {
    const key = req.get('idempotency-key');
    if (!req.get('authorization') || !key) {
      res.status(400).json({ error: 'missing header' });
      return;
    }
    const job = await queue.add('confirm', req.body, { jobId: key, ...KEEP });
    res.status(202).json({ id: job.id });
  });
  const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    const address = server.address();
    console.log(`naive api ready ${typeof address === 'object' && address ? address.port : ''}`);
  });
  process.on('SIGTERM', () => {
    server.close(() => void queue.close().then(() => process.exit(0)));
    server.closeIdleConnections();
  });
} else if (role === 'worker') {
  const pg = new Pool(process.env.PG_BASE_URL!, { connections: 200 });
  const auth = `Basic ${Buffer.from(`${process.env.PG_SECRET_KEY ?? ''}:`).toString('base64')}`;
  const worker = new Worker(
    'confirm',
    async (job) => {
      const res = await pg.request({
        method: 'POST',
        path: '/v1/payments/confirm',
        headers: { authorization: auth, 'content-type': 'application/json', 'idempotency-key': `naive.${job.id}` },
        body: JSON.stringify(job.data),
      });
      await res.body.dump();
      return res.statusCode;
    },
    { connection, prefix, concurrency: 200, limiter: { max: 500, duration: 1_000 }, ...KEEP },
  );
  await worker.waitUntilReady();
  console.log('naive worker ready');
  process.on('SIGTERM', () => void worker.close().then(() => pg.close()).then(() => process.exit(0)));
} else {
  console.error('NAIVE_ROLE: want api or worker');
  process.exit(2);
}
