/**
 * CPU per PG call of the sending side, alone, at full speed and at the PG's pace (docs/perf.md,
 * "The gate's pace" and "The floors"). A simulator in its own process (rate limit lifted, ~3 ms
 * answers); this process makes the calls and reads its own CPU (all its threads, from /proc via
 * `process.cpuUsage`) over N calls, 100 at a time:
 *
 *   raw          undici Pool requests, as fast as they go
 *   raw-paced    the same, each request at its own moment, RATE a second (one timer each)
 *   raw-burst    the same pace, released 10 at a time
 *   raw-stored   raw-paced, each answer then stored by one Redis script call: the least a worker
 *                does per payment (a paced PG call and its result kept), in one thread
 *   client       pg-client's PgClient without a gate
 *   gated        PgClient behind the Redis permit gate at RATE a second, its last millisecond
 *                before each slot waited by event-loop turns (the main thread's way) or by
 *                sleeping (the sender thread's)
 *
 *   npx tsx apps/bench/src/tools/pace-cost.ts [N] [RATE]
 *
 * Run it on an otherwise idle machine: it measures per-call costs, not throughput.
 */
import { randomUUID } from 'node:crypto';
import { testConfig } from '@sluice/config';
import { PgClient, pgClientOptionsOf, Ungated } from '@sluice/pg-client';
import { permitGateOf } from '@sluice/permit-gate';
import { connectConfigured } from '@sluice/store';
import { freePort, startProcess } from '@sluice/test-support';
import pino from 'pino';
import { Pool } from 'undici';

const N = Number(process.argv[2] ?? 2_500);
const RATE = Number(process.argv[3] ?? 500);
const CONCURRENCY = 100;
const SECRET = 'test_sk_sluice_demo';

const port = await freePort();
const sim = startProcess('apps/pg-simulator/src/main.ts', {
  SIM_PORT: String(port), SIM_RATE_LIMIT: '1000000', SIM_LATENCY_MEDIAN_MS: '3', SIM_LATENCY_P99_MS: '6', SIM_DECLINE_RATE: '0', SIM_SEED: '1',
});
await sim.waitFor(new RegExp(String(port)));
const url = `http://127.0.0.1:${port}`;
const prefix = `pace-cost-${randomUUID()}`;
const auth = `Basic ${Buffer.from(`${SECRET}:`).toString('base64')}`;
let seq = 0;
const payment = () => ({ paymentKey: `pk_${prefix}_${++seq}`, orderId: `order_${prefix}_${seq}`, amount: 1_000 });

/** Runs `one` n times, CONCURRENCY at once; `one` gets the call's number from 0. */
async function runAll(n: number, one: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) await one(next++);
  }));
}

/** CPU (ms) per call of N calls, after 300 to warm up. */
async function measure(name: string, make: () => (i: number) => Promise<unknown>): Promise<void> {
  await runAll(300, make());
  const one = make();
  const before = process.cpuUsage();
  const t0 = performance.now();
  await runAll(N, one);
  const cpu = process.cpuUsage(before);
  const wall = performance.now() - t0;
  console.log(`${name.padEnd(44)} ${((cpu.user + cpu.system) / N / 1_000).toFixed(3)} ms CPU per call, ${Math.round((N * 1_000) / wall)} calls/s`);
}

/** A request at its own moment: call i at start + i / RATE s, released `burst` at a time. */
function paced(burst: number, send: () => Promise<unknown>): () => (i: number) => Promise<unknown> {
  return () => {
    const start = performance.now();
    return async (i) => {
      const wait = start + (Math.floor(i / burst) * burst * 1_000) / RATE - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await send();
    };
  };
}

const pool = new Pool(url, { connections: CONCURRENCY });
const raw = async () => {
  const res = await pool.request({
    method: 'POST', path: '/v1/payments/confirm', body: JSON.stringify(payment()),
    headers: { authorization: auth, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
  });
  await res.body.text();
};
await measure('raw: undici Pool, full speed', () => raw);
await measure(`raw-paced: ${RATE}/s, one timer per request`, paced(1, raw));
await measure(`raw-burst: ${RATE}/s, 10 at a time`, paced(10, raw));
const config = testConfig({ PG_BASE_URL: url, PG_SECRET_KEY: SECRET, REDIS_PREFIX: prefix, PG_RATE_LIMIT: RATE });
const redis = connectConfigured(config, pino({ level: 'silent' }));
let stored = 0;
const store = "redis.call('SET', KEYS[1], ARGV[1]) return 1";
await measure(`raw-stored: ${RATE}/s, one Redis script after each`, paced(1, async () => {
  await raw();
  await redis.eval(store, 1, `${prefix}:stored:${++stored}`, 'APPROVED');
}));
await pool.close();

const client = new PgClient(pgClientOptionsOf(config), new Ungated());
await measure('client: PgClient, no gate, full speed', () => () => client.confirm(payment(), { idempotencyKey: randomUUID() }));
await client.close();

for (const lastMs of ['turns', 'sleep'] as const) {
  const gate = permitGateOf({ ...config, REDIS_PREFIX: `${prefix}-${lastMs}` }, redis, lastMs);
  const gated = new PgClient(pgClientOptionsOf(config), gate);
  await measure(`gated: PgClient behind the gate at ${RATE}/s, last ms ${lastMs}`, () => () => gated.confirm(payment(), { idempotencyKey: randomUUID() }));
  console.log(`  margin kept at the last grant: ${gate.currentMarginMs().toFixed(1)} ms`);
  await gated.close();
  gate.close();
}
const keys = await redis.keys(`${prefix}*`);
if (keys.length > 0) await redis.unlink(...keys);
redis.disconnect();
sim.child.kill('SIGKILL');
