/**
 * The whole gateway as real processes for system tests: the simulator (with an admin port that
 * stays up through a `refuse` outage), the API and worker processes, on the local Redis under a
 * unique key prefix that is deleted afterwards.
 */
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { DEMO_SECRETS, hashApiKey, hashTagOf, parseNodes, parseSentinels } from '@sluice/config';
import { connectRedis, keysAsWritten, shardPrefix } from '@sluice/store';
import { freePort, startProcess, type Proc, type RedisClusterGroup } from '@sluice/test-support';
import { dropDatabase, ensureDatabase } from '@sluice/books';
import { TEST_POSTGRES } from '@sluice/books/testing';

export const DEMO_KEY = 'sk_test_sluice_merchant_a';
export const OTHER_KEY = 'sk_test_sluice_merchant_b';
const PEPPER = 'test-pepper-0123456789abcdef';
export const ADMIN = { user: 'admin', password: 'test-admin-pass' };

export { freePort };

export interface Stack {
  prefix: string;
  apiUrl: string;
  simUrl: string;
  simAdminUrl: string;
  env: Record<string, string>;
  redis: Redis;
  sim: Proc;
  api: Proc;
  workers: Proc[];
  startWorker(): Promise<Proc>;
  startApi(): Promise<Proc>;
  /** Sets simulator knobs through its admin port. */
  simConfig(knobs: Record<string, unknown>): Promise<void>;
  /** With `books`: the database the drainers write (a fresh one, dropped at stop), and its drainers. */
  databaseUrl: string | null;
  drainers: Proc[];
  startDrainer(env?: Record<string, string>): Promise<Proc>;
  stop(): Promise<void>;
}

export interface StackOptions {
  workers?: number;
  /** A Redis other than the local one (e.g. a private one a chaos test kills). */
  redisUrl?: string;
  sim?: Record<string, string>;
  env?: Record<string, string>;
  /** A books database of its own (DATABASE_URL for the API and drainers), and one drainer. */
  books?: boolean;
}

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  // On a Redis Cluster every key shares the prefix's hash tag (config asks for one).
  const prefix = o.env?.REDIS_CLUSTER_NODES ? `{test-${randomUUID()}}` : `test-${randomUUID()}`;
  const [simPort, simAdminPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const simUrl = `http://127.0.0.1:${simPort}`;
  const env: Record<string, string> = {
    REDIS_URL: o.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_PREFIX: prefix,
    LOG_LEVEL: 'info',
    PG_BASE_URL: simUrl,
    PG_SECRET_KEY: DEMO_SECRETS.pgSecretKey,
    // Tests run on the simulator's published secret: a demo as far as secrets go.
    SLUICE_DEMO: '1',
    API_KEY_PEPPER: PEPPER,
    MERCHANTS: `merchant-a:${hashApiKey(PEPPER, DEMO_KEY)},merchant-b:${hashApiKey(PEPPER, OTHER_KEY)}`,
    ADMIN_USER: ADMIN.user,
    ADMIN_PASSWORD: ADMIN.password,
    PORT: String(apiPort),
    SWEEP_INTERVAL_MS: '1000',
    ...o.env,
  };
  const databaseUrl = o.books ? `${TEST_POSTGRES}/sluice_test_${randomUUID().replaceAll('-', '').slice(0, 16)}` : null;
  if (databaseUrl) {
    await ensureDatabase(databaseUrl);
    env.DATABASE_URL = databaseUrl;
  }
  const sim = startProcess('apps/pg-simulator/src/main.ts', {
    SIM_PORT: String(simPort),
    SIM_ADMIN_PORT: String(simAdminPort),
    SIM_SECRET_KEY: DEMO_SECRETS.pgSecretKey,
    ...o.sim,
  });
  await sim.waitFor(/listening on/);
  // The test's own view of Redis: the primary the sentinels name, when the stack runs on Sentinel;
  // the cluster, when it runs on one.
  const redis = env.REDIS_CLUSTER_NODES
    ? connectRedis({ kind: 'cluster', nodes: parseNodes(env.REDIS_CLUSTER_NODES), tls: false }, { enableAutoPipelining: false }, { hangMs: 0 })
    : env.REDIS_SENTINELS
      ? connectRedis({ kind: 'sentinel', sentinels: parseSentinels(env.REDIS_SENTINELS), name: env.REDIS_SENTINEL_NAME ?? 'mymaster', tls: false }, { enableAutoPipelining: false }, { hangMs: 0 })
      : new Redis(env.REDIS_URL!, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
  const stack: Stack = {
    prefix,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    simUrl,
    simAdminUrl: `http://127.0.0.1:${simAdminPort}`,
    env,
    redis,
    sim,
    api: null as unknown as Proc,
    workers: [],
    databaseUrl,
    drainers: [],
    async startDrainer(extra = {}) {
      const d = startProcess('apps/drainer/src/main.ts', { ...env, ...extra });
      await d.waitFor(/drainer started/);
      stack.drainers.push(d);
      return d;
    },
    async startWorker() {
      const w = startProcess('apps/worker/src/main.ts', { ...env, WORKER_FORKS: '1' });
      await w.waitFor(/worker started/);
      stack.workers.push(w);
      return w;
    },
    async startApi() {
      const a = startProcess('apps/api/src/main.ts', env);
      await a.waitFor(/api listening/);
      stack.api = a;
      return a;
    },
    async simConfig(knobs) {
      const res = await fetch(`${stack.simAdminUrl}/__sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(knobs) });
      if (!res.ok) throw new Error(`sim config: ${res.status} ${await res.text()}`);
    },
    async stop() {
      await Promise.all([stack.api?.stop(), ...stack.workers.map((w) => w.stop()), ...stack.drainers.map((d) => d.stop())]);
      if (databaseUrl) await dropDatabase(databaseUrl);
      await sim.stop();
      // (On a cluster KEYS reaches one node: its test stops the cluster, keys and all.)
      if (!env.REDIS_CLUSTER_NODES) {
        const keys = await redis.keys(`${prefix}:*`);
        for (let i = 0; i < keys.length; i += 1_000) await redis.unlink(...keys.slice(i, i + 1_000));
      }
      redis.disconnect();
    },
  };
  await stack.startApi();
  for (let i = 0; i < (o.workers ?? 1); i++) await stack.startWorker();
  if (o.books) await stack.startDrainer();
  return stack;
}

/**
 * POSTs one payment; returns the status and body. A transport error (a keep-alive socket the
 * server closed as we reused it) is retried with the same Idempotency-Key, as merchants do.
 */
export async function postPayment(apiUrl: string, p: { paymentKey: string; orderId: string; amount: number }, idemKey: string, key = DEMO_KEY) {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${apiUrl}/v1/payments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'idempotency-key': idemKey, 'content-type': 'application/json' },
        body: JSON.stringify(p),
      });
      return { status: res.status, body: (await res.json()) as { id: string; status: string; code?: string } };
    } catch (err) {
      if (attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }
}

/**
 * A merchant's create of payment `i` of a run: retried with the same key on anything but a 202 or
 * a 4xx (250 ms apart) for up to a minute. Returns the id once accepted and every answer (0: none).
 */
export async function createRetrying(apiUrl: string, keyPrefix: string, i: number, run: string): Promise<{ id: string | null; answers: number[] }> {
  const answers: number[] = [];
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    try {
      const res = await fetch(`${apiUrl}/v1/payments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${DEMO_KEY}`, 'idempotency-key': `${keyPrefix}-${run}-${i}`, 'content-type': 'application/json' },
        body: JSON.stringify({ paymentKey: `pk_${run}_${i}`, orderId: `order-${run}-${i}`, amount: 100 }),
        signal: AbortSignal.timeout(10_000),
      });
      answers.push(res.status);
      const body = (await res.json()) as { id?: string };
      if (res.status === 202) return { id: body.id!, answers };
      if (res.status < 500) return { id: null, answers };
    } catch {
      answers.push(0);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { id: null, answers };
}

/** Reads every payment record under the prefix (in its shard): id → {paymentKey, status, …}. */
export async function readPayments(redis: Redis, prefix: string, ids: string[]): Promise<Map<string, Record<string, string>>> {
  const keys = await keysOf(redis, prefix);
  const out = new Map<string, Record<string, string>>();
  for (let i = 0; i < ids.length; i += 500) {
    // One command each (auto-pipelined): on a Redis Cluster a pipeline spans one node only.
    const res = await Promise.all(ids.slice(i, i + 500).map((id) => redis.hgetall(keys.shardOf(id).payment(id))));
    res.forEach((rec, j) => {
      if (rec && rec.id) out.set(ids[i + j]!, rec);
    });
  }
  return out;
}

/** The keys under `prefix`, over the payment shards the stack's processes wrote down at start-up. */
export const keysOf = keysAsWritten;

/** Payments not final (the `open` zsets of every shard). */
export async function openCount(redis: Redis, prefix: string): Promise<number> {
  let n = 0;
  for (const k of (await keysOf(redis, prefix)).shards) n += await redis.zcard(k.open);
  return n;
}

/** Waits until the backlog (`open` zset) is empty; returns how long it took (ms). */
export async function drain(redis: Redis, prefix: string, timeoutMs: number): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if ((await openCount(redis, prefix)) === 0) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 250));
  }
  // Say what is stuck, so that a run that fails once on a noisy machine can be read afterwards.
  const keys = await keysOf(redis, prefix);
  const open = (await Promise.all(keys.shards.map((k) => redis.zrange(k.open, 0, 4)))).flat().slice(0, 5);
  const stuck = await readPayments(redis, prefix, open);
  const fields = ['status', 'phase', 'pgCalls', 'inDoubtAt', 'fqSeq', 'failureCode', 'updatedAt'];
  const sample = open.map((id) => ({ id, ...Object.fromEntries(fields.map((f) => [f, stuck.get(id)?.[f]])) }));
  const breakers = await Promise.all(keys.shards.map((k) => redis.hgetall(k.breaker)));
  const jobs: Record<string, number> = {};
  for (const q of ['confirm', 'resolve']) {
    for (const list of ['wait', 'active']) jobs[`${q}:${list}`] = await redis.llen(`${prefix}:${q}:${list}`);
    for (const set of ['delayed', 'prioritized', 'failed']) jobs[`${q}:${set}`] = await redis.zcard(`${prefix}:${q}:${set}`);
  }
  throw new Error(
    `backlog not drained in ${timeoutMs} ms: ${await openCount(redis, prefix)} open; ` +
      JSON.stringify({ sample, jobs, breakers: breakers.filter((b) => Object.keys(b).length > 0) }),
  );
}

/**
 * Makes sure the primary on `port` serves at least one of the payment shards under `prefix` (a
 * shard's slot is moved to it when the slots fell otherwise): a test that kills that primary then
 * kills payments' state, not only claims.
 */
export async function ensureServesShard(cluster: RedisClusterGroup, prefix: string, shards: number, port: number): Promise<void> {
  const slots = await Promise.all(Array.from({ length: shards }, (_, n) => cluster.slotOf(`{${hashTagOf(shardPrefix(prefix, n, shards))}}`)));
  const owners = await Promise.all(slots.map((x) => cluster.ownerOf(x)));
  if (!owners.includes(port)) await cluster.moveSlot(slots[0]!, port);
}
