/**
 * What one intake costs at the least on this machine (docs/perf.md, "The floors"): the CPU per
 * request of a server that does only what no intake can skip, under the bench's open loop, beside
 * Sluice's API under the same load in the same run, taking turns.
 *
 *   floor    `node:http`, the body read and parsed, one Redis script call that stores it, a 202
 *            with a small JSON body: no auth, no validation, no idempotency, no queue
 *   sluice   Sluice's API (apps/api), no worker running
 *
 *   npx tsx apps/bench/src/tools/intake-floor.ts [RATE] [SECONDS] [ROUNDS]
 *
 * The server process's CPU (all its threads, /proc) over the run, per request answered 202. Run
 * it on an otherwise idle machine. The floor server is this file run with `FLOOR_SERVER=1`.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { startProcess } from '@sluice/test-support';
import { treeCpuSeconds } from '../analysis/cpu.ts';
import { createPool, openLoop } from '../harness/load.ts';
import { connect, deleteMatching, REDIS_URL } from '../harness/redis-tools.ts';
import { freePort, Stack, stopProc } from '../harness/stack.ts';

/** The floor: one script call per request, the same round trip Sluice's intake makes. */
async function floorServer(): Promise<void> {
  const redis = new Redis(REDIS_URL);
  const prefix = process.env.FLOOR_PREFIX ?? 'floor';
  const store = "redis.call('SET', KEYS[1], ARGV[1]) return 1";
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { paymentKey: string };
      const id = `${prefix}:${++n}`;
      redis.eval(store, 1, id, body.paymentKey).then(
        () => {
          const out = JSON.stringify({ id });
          res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
        },
        () => res.writeHead(500).end(),
      );
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    console.log(`floor listening on ${typeof a === 'object' && a ? a.port : 0}`);
  });
  process.on('SIGTERM', () => server.close(() => void redis.quit().then(() => process.exit(0))));
}

async function main(): Promise<void> {
  const rate = Number(process.argv[2] ?? 1_000);
  const seconds = Number(process.argv[3] ?? 15);
  const rounds = Number(process.argv[4] ?? 2);
  const redis = connect();
  const root = `intake-floor-${randomUUID().slice(0, 8)}`;
  const rows: string[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const kind of ['floor', 'sluice'] as const) {
        const prefix = `${root}-${kind}-${round}`;
        let url: string;
        let pid: number | undefined;
        let stop: () => Promise<void>;
        if (kind === 'floor') {
          const proc = startProcess('apps/bench/src/tools/intake-floor.ts', { FLOOR_SERVER: '1', FLOOR_PREFIX: prefix });
          url = `http://127.0.0.1:${(await proc.waitFor(/floor listening on (\d+)/))[1]}`;
          pid = proc.child.pid;
          stop = () => stopProc(proc, 5_000);
        } else {
          // The API never calls the PG: any address does.
          const stack = new Stack(prefix, `http://127.0.0.1:${await freePort()}`, {});
          url = await stack.startApi();
          pid = stack.api?.child.pid;
          stop = () => stack.stop();
        }
        try {
          const pool = createPool(url, 128);
          await openLoop(pool, { rate, seconds: 2, tag: `${prefix}-warm` });
          const before = treeCpuSeconds(pid);
          const r = await openLoop(pool, { rate, seconds, tag: prefix });
          const cpu = treeCpuSeconds(pid) - before;
          await pool.close();
          const lat = [...r.latency].filter(Number.isFinite).sort((a, b) => a - b);
          const p99 = lat[Math.floor(0.99 * (lat.length - 1))] ?? Number.NaN;
          rows.push(`${kind.padEnd(6)} round ${round}: ${((1_000 * cpu) / Math.max(1, r.accepted)).toFixed(3)} ms CPU per intake, ${r.accepted}/${r.offered} accepted, p99 ${p99.toFixed(1)} ms`);
          console.log(rows[rows.length - 1]);
        } finally {
          await stop();
          await deleteMatching(redis, `${prefix}*`);
        }
      }
    }
  } finally {
    await redis.quit();
  }
}

if (process.env.FLOOR_SERVER === '1') await floorServer();
else await main();
