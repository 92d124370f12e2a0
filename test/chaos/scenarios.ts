/**
 * The fault suite: real processes (the API, two workers, the simulator, and a private
 * redis-server with AOF) under steady load with the standard mixed PG faults (test/support/faults.ts) throughout,
 * and one fault per scenario. After each: drain, reconcile, and the invariant checker.
 *
 * `redis: 'sentinel'` runs the same on a Sentinel group of its own (1 primary, 2 replicas, 3
 * sentinels; AOF; `min-replicas-to-write 1`; the apps with REDIS_WAIT_REPLICAS=2, every replica a
 * failover may promote), where the Redis kill is a kill -9 of the primary, failed over, and the old
 * one brought back as a replica.
 * `redis: 'cluster'`: on a Redis Cluster of its own (3 primaries with a replica each; the same
 * settings; 8 payment shards), where the Redis kill is a kill -9 of the primary of the claims'
 * slot, which serves payment shards too, and which the cluster fails over to its replica.
 */
import { Queue } from 'bullmq';
import { MIXED_FAULTS } from '../support/faults.ts';
import { checkInvariants, GUARD_TO_ARRIVAL_MS, type LedgerEntry } from '@sluice/test-support';
import { getJson } from '@sluice/test-support';
import { startRedisCluster, startSentinelGroup, type RedisClusterGroup, type SentinelGroup } from '@sluice/test-support';
import { hashTagOf } from '@sluice/config';
import { queuePrefixOf } from '@sluice/queue';
import { startPrivateRedis, PRIVATE_REDIS_ARGS, type PrivateRedis } from '../support/redis-server.ts';
import { drain, ensureServesShard, readPayments, startStack, type Stack } from '../support/stack.ts';
import { LoadDriver } from './load.ts';

export interface ScenarioResult {
  name: string;
  acknowledged: number;
  lost: number;
  notFinal: number;
  doubleCharges: number;
  mismatches: number;
  maxInWindow: number;
  status429: number;
  status503: number;
  drainMs: number;
  repaired: number;
  byStatus: Record<string, number>;
  notes: Record<string, unknown>;
}

export interface ChaosOptions {
  /** New payments per second offered during each scenario. */
  rate: number;
  workerKills: number;
  killEveryMs: number;
  outageMs: number;
  scenarios: number[];
  /** One private redis-server (default), a Sentinel group, or a Redis Cluster. */
  redis?: 'single' | 'sentinel' | 'cluster';
  log?: (line: string) => void;
}

/** The Redis a run uses, and how its scenario 3 kills it. */
interface ChaosRedis {
  env: Record<string, string>;
  /** Kills the (primary) Redis of the stack's payments with SIGKILL and brings it back; returns what to note. */
  crash(stack: Stack): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

async function singleRedis(): Promise<ChaosRedis> {
  const redis: PrivateRedis = await startPrivateRedis();
  return {
    env: { REDIS_URL: redis.url },
    async crash() {
      await redis.kill9();
      await sleep(2_000);
      await redis.restart();
      return {};
    },
    stop: () => redis.stop(),
  };
}

async function sentinelRedis(): Promise<ChaosRedis> {
  const group: SentinelGroup = await startSentinelGroup({
    replicas: 2, sentinels: 3, downAfterMs: 1_000,
    nodeArgs: [...PRIVATE_REDIS_ARGS, ['min-replicas-to-write', '1'], ['min-replicas-max-lag', '10']],
  });
  return {
    env: { REDIS_SENTINELS: group.sentinelList, REDIS_SENTINEL_NAME: group.name, REDIS_WAIT_REPLICAS: '2', REDIS_WAIT_TIMEOUT_MS: '500', REDIS_HANG_MS: '2000' },
    async crash() {
      const from = await group.primaryPort();
      const node = group.nodes.find((n) => n.port === from)!;
      const t0 = Date.now();
      await node.kill9();
      const to = await group.waitForFailover(from, 30_000);
      const failoverMs = Date.now() - t0;
      // Back from its AOF, as a replica of the new primary (README: "Bring a failed primary back").
      await node.restart([['replicaof', '127.0.0.1', String(to)]]);
      return { primary: `${from} → ${to}`, failoverMs };
    },
    stop: () => group.stop(),
  };
}

/** Payment shards of the cluster runs (REDIS_SHARDS). */
const CLUSTER_SHARDS = 8;

async function clusterRedis(): Promise<ChaosRedis> {
  const cluster: RedisClusterGroup = await startRedisCluster({
    primaries: 3, replicas: 1,
    nodeArgs: [...PRIVATE_REDIS_ARGS, ['min-replicas-to-write', '1'], ['min-replicas-max-lag', '10']],
  });
  return {
    env: { REDIS_CLUSTER_NODES: cluster.nodeList, REDIS_SHARDS: String(CLUSTER_SHARDS), REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '500', REDIS_HANG_MS: '2000' },
    async crash(stack) {
      // The primary of the claims' slot, serving payment shards too.
      const slot = await cluster.slotOf(`{${hashTagOf(stack.prefix)}}`);
      const from = await cluster.ownerOf(slot);
      await ensureServesShard(cluster, stack.prefix, CLUSTER_SHARDS, from);
      const node = cluster.nodes.find((n) => n.port === from)!;
      const t0 = Date.now();
      await node.kill9();
      // The survivors promote its replica: wait until one of them maps the slot elsewhere.
      const survivor = cluster.nodes.find((n) => n !== node)!;
      let to = from;
      while (to === from) {
        if (Date.now() - t0 > 30_000) throw new Error(`the cluster did not fail over from ${from} within 30 s`);
        await sleep(200);
        const ranges = (await survivor.client().call('CLUSTER', 'SLOTS').catch(() => [])) as [number, number, [string, number]][];
        to = Number(ranges.find(([lo, hi]) => slot >= lo && slot <= hi)?.[2][1] ?? from);
      }
      const failoverMs = Date.now() - t0;
      // Back, as a replica of the new primary (its nodes.conf says whose slots it had).
      await node.restart();
      return { primary: `${from} → ${to}`, failoverMs };
    },
    stop: () => cluster.stop(),
  };
}

export const FULL: ChaosOptions = { rate: 100, workerKills: 10, killEveryMs: 3_000, outageMs: 30_000, scenarios: [1, 2, 3, 4, 5] };
export const SHORT: ChaosOptions = { rate: 60, workerKills: 4, killEveryMs: 2_500, outageMs: 10_000, scenarios: [1, 3, 4] };

export async function runChaos(o: ChaosOptions): Promise<ScenarioResult[]> {
  const log = o.log ?? (() => undefined);
  const redis = o.redis === 'sentinel' ? await sentinelRedis() : o.redis === 'cluster' ? await clusterRedis() : await singleRedis();
  const stack = await startStack({
    workers: 2,
    sim: { SIM_SEED: '1234', SIM_LATENCY_MEDIAN_MS: '60', SIM_LATENCY_P99_MS: '600', ...MIXED_FAULTS },
    env: {
      ...redis.env,
      WORKER_PROCESSES: '2',
      WORKER_LOCK_MS: '5000',
      PG_HEADERS_TIMEOUT_MS: '1500',
      PG_CONNECT_TIMEOUT_MS: '500',
      RESOLVE_FIRST_INQUIRY_DELAY_MS: '1500',
      RETRY_BACKOFF_BASE_MS: '500',
      RETRY_BACKOFF_MAX_MS: '5000',
      BREAKER_OPEN_MS: '3000',
      BREAKER_PROBE_INTERVAL_MS: '1000',
      RECONCILE_INTERVAL_MS: '3600000',
      WORKER_SHUTDOWN_GRACE_MS: '5000',
    },
  });
  const results: ScenarioResult[] = [];
  try {
    for (const n of o.scenarios) {
      log(`scenario ${n}: ${TITLES[n]}`);
      const r = await scenario(stack, redis, n, o);
      log(`  ${JSON.stringify(r)}`);
      results.push(r);
    }
  } finally {
    await stack.stop().catch(() => undefined);
    await redis.stop().catch(() => undefined);
  }
  return results;
}

export const TITLES: Record<number, string> = {
  1: 'kill -9 a random worker every few seconds, and restart it',
  2: 'kill -9 the API during load, and restart it (clients retry with the same key)',
  3: 'kill -9 Redis (with Sentinel or Cluster: the primary, failed over), and restart it from its AOF',
  4: 'PG outage (refusing, then hanging), then recovery',
  5: 'the mixed PG faults alone',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scenario(stack: Stack, redis: ChaosRedis, n: number, o: ChaosOptions): Promise<ScenarioResult> {
  const since = Date.now();
  const driver = new LoadDriver(() => stack.apiUrl, `s${n}-${since.toString(36)}`);
  const notes: Record<string, unknown> = {};
  driver.start(o.rate);
  await sleep(2_000);
  switch (n) {
    case 1:
      for (let k = 0; k < o.workerKills; k++) {
        const i = Math.floor(Math.random() * stack.workers.length);
        await stack.workers[i]!.stop('SIGKILL');
        stack.workers.splice(i, 1);
        await stack.startWorker();
        await sleep(o.killEveryMs);
      }
      notes.workerKills = o.workerKills;
      break;
    case 2:
      await stack.api.stop('SIGKILL');
      await sleep(1_000);
      await stack.startApi();
      await sleep(5_000);
      notes.clientRetries = driver.retries;
      break;
    case 3:
      Object.assign(notes, await redis.crash(stack));
      await sleep(5_000);
      notes.clientRetries = driver.retries;
      break;
    case 4: {
      const outageStart = Date.now();
      await stack.simConfig({ outage: 'refuse', outageMs: o.outageMs / 2 });
      await sleep(o.outageMs / 2);
      await stack.simConfig({ outage: 'hang', outageMs: o.outageMs / 2 });
      await sleep(o.outageMs / 2 + 1_000);
      Object.assign(notes, await breakerEvidence(stack, outageStart));
      break;
    }
    default:
      await sleep(10_000);
  }
  await driver.stop();
  const drainMs = await drain(stack.redis, stack.prefix, 180_000);
  const recon = await reconcile(stack);
  const ids = [...driver.acked.values()];
  const records = await readPayments(stack.redis, stack.prefix, ids);
  const views = new Map([...records].map(([id, r]) => [id, { id, paymentKey: r.paymentKey!, status: r.status! }]));
  const ledger = (await getJson<{ payments: Record<string, LedgerEntry> }>(`${stack.simAdminUrl}/__sim/ledger`)).payments;
  const report = checkInvariants(ids, views, ledger);
  const { arrivals } = await getJson<{ arrivals: [number, string, number][] }>(`${stack.simAdminUrl}/__sim/arrivals?since=${since}`);
  // Why payments failed, when any did (e.g. NOT_PROCESSED_BY_PG: the PG never held them).
  const failures: Record<string, number> = {};
  for (const r of records.values()) if (r.status === 'FAILED') failures[r.failureCode ?? '?'] = (failures[r.failureCode ?? '?'] ?? 0) + 1;
  if (Object.keys(failures).length > 0) notes.failureCodes = failures;
  return {
    name: TITLES[n]!,
    acknowledged: report.acknowledged,
    lost: report.lost.length,
    notFinal: report.notFinal.length,
    doubleCharges: report.doubleCharges.length,
    mismatches: report.mismatches.length,
    maxInWindow: maxInWindow(arrivals.map((a) => a[0])),
    status429: arrivals.filter((a) => a[2] === 429).length,
    status503: arrivals.filter((a) => a[2] === 503).length,
    drainMs,
    repaired: Number(recon.repaired ?? -1),
    byStatus: report.byStatus,
    notes,
  };
}

/** Runs reconciliation now through the workers' maintenance queue; returns its report. */
async function reconcile(stack: Stack): Promise<Record<string, string>> {
  const q = new Queue('maintenance', { connection: stack.redis, prefix: queuePrefixOf(stack.prefix) });
  const job = await q.add('reconcile', {});
  for (let i = 0; i < 300 && !(await job.isCompleted()); i++) await sleep(200);
  await q.close();
  return stack.redis.hgetall(`${stack.prefix}:recon:last`);
}

/** While the breaker was open: PG calls per second (probes) and confirms that went out. */
async function breakerEvidence(stack: Stack, from: number): Promise<Record<string, unknown>> {
  const log = (await stack.redis.lrange(`${stack.prefix}:breaker:log`, 0, -1)).map((l) => JSON.parse(l) as { at: number; state: string }).reverse();
  // Walk the transitions in order: open from the first `open` until the next other state.
  const intervals: [number, number][] = [];
  let openedAt: number | null = null;
  for (const e of log) {
    if (e.state === 'open' && openedAt === null) openedAt = e.at;
    else if (e.state !== 'open' && openedAt !== null) {
      intervals.push([openedAt, e.at]);
      openedAt = null;
    }
  }
  if (openedAt !== null) intervals.push([openedAt, Date.now()]);
  const recent = intervals.filter(([, b]) => b >= from);
  const { arrivals } = await getJson<{ arrivals: [number, string, number][] }>(`${stack.simAdminUrl}/__sim/arrivals?since=${from}`);
  // A call that passed the guard just before the breaker opened can land a little after it.
  const inOpen = arrivals.filter(([t]) => recent.some(([a, b]) => t > a + GUARD_TO_ARRIVAL_MS && t < b));
  const openMs = recent.reduce((sum, [a, b]) => sum + (b - a), 0);
  const perSecond = new Map<number, number>();
  for (const [t] of inOpen) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
  return {
    breakerOpened: recent.length,
    breakerOpenMs: openMs,
    callsWhileOpen: inOpen.length,
    maxCallsInOneSecondWhileOpen: Math.max(0, ...perSecond.values()),
    confirmsWhileOpen: inOpen.filter((a) => a[1] === 'c').length,
  };
}

function maxInWindow(times: number[]): number {
  const t = [...times].sort((a, b) => a - b);
  let lo = 0;
  let best = 0;
  for (let hi = 0; hi < t.length; hi++) {
    while (t[hi]! - t[lo]! >= 1_000) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}
