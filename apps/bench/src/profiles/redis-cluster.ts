/**
 * Scenario "cluster" (issue "Outgrowing one Redis", Redis Cluster): the overload profile (one
 * worker process, the gate) on a Redis Cluster of 3 primaries with 16 payment shards
 * (REDIS_SHARDS), and the same on one redis-server (one shard, as `npm start`), both started here
 * with the same settings, rounds taking turns. The cluster's prefix is one whose three slots of
 * their own (the claims at the root, BullMQ's queues, the gate) fall on three primaries; the
 * shards spread by themselves (`shardPrefix`). Per arm: utilisation, the PG's busiest rolling
 * second and 429s, intake p50/p99, and the payments against the PG's ledger. For the cluster:
 * which primary serves each family of keys and how many shards, how many of the run's payment
 * hashes each primary holds, and each primary's CPU seconds.
 */
import { DEFAULT_PROVIDER, hashTagOf, parseNodes } from '@sluice/config';
import { gatePrefixOf } from '@sluice/permit-gate';
import { connectRedis, shardPrefix } from '@sluice/store';
import { startRedisCluster, startRedisServer, type RedisClusterGroup, type RedisServer } from '@sluice/test-support';
import { queuePrefixOf } from '@sluice/queue';
import type { Redis } from 'ioredis';
import { redisCpuSeconds } from '../analysis/cpu.ts';
import { median, percentile } from '../analysis/stats.ts';
import type { BenchContext } from '../harness/context.ts';
import { scanKeys } from '../harness/redis-tools.ts';
import { CONFIGS, runOverload, type OverloadRun } from './overload.ts';

/** One arm over its rounds. */
export interface ClusterArm {
  /** Utilisation of each round, and their median. */
  utilisation: number[];
  utilisationMedian: number;
  /** Worst over the rounds. */
  maxInWindow: number;
  status429: number;
  /** Medians over the rounds (ms). */
  intakeP50Ms: number;
  intakeP99Ms: number;
  accepted: number;
  lost: number;
  notFinal: number;
  doubleCharges: number;
  mismatches: number;
}

/** One primary of the cluster over the cluster's rounds. */
export interface ClusterPrimary {
  port: number;
  /** The key families whose slot it served. */
  families: string[];
  /** The payment shards whose slot it served. */
  shards: number;
  /** The run's payment hashes it held, summed over the rounds. */
  paymentKeys: number;
  /** Its CPU seconds, summed over the rounds. */
  cpuSeconds: number;
}

/** What the scenario measured. */
export interface ClusterResult {
  rounds: number;
  rate: number;
  seconds: number;
  single: ClusterArm;
  cluster: ClusterArm;
  /** cluster ÷ single of the median utilisation. */
  utilisationRatio: number;
  primaries: ClusterPrimary[];
  /** The single Redis's CPU seconds, summed over its rounds. */
  singleCpuSeconds: number;
  problems: string[];
}

function armOf(runs: OverloadRun[]): ClusterArm {
  const inv = runs.map((r) => r.outcomes.invariants);
  return {
    utilisation: runs.map((r) => r.pg.utilisation),
    utilisationMedian: median(runs.map((r) => r.pg.utilisation)),
    maxInWindow: Math.max(...runs.map((r) => r.pg.maxInWindow)),
    status429: runs.reduce((a, r) => a + r.pg.status429, 0),
    intakeP50Ms: median(runs.map((r) => percentile(r.intake.latency, 50))),
    intakeP99Ms: median(runs.map((r) => percentile(r.intake.latency, 99))),
    accepted: runs.reduce((a, r) => a + r.intake.accepted, 0),
    lost: inv.reduce((a, i) => a + i.lost.length, 0),
    notFinal: inv.reduce((a, i) => a + i.notFinal.length, 0),
    doubleCharges: inv.reduce((a, i) => a + i.doubleCharges.length, 0),
    mismatches: inv.reduce((a, i) => a + i.mismatches.length, 0),
  };
}

/** Payment shards of the cluster arm (REDIS_SHARDS). */
const SHARDS = 16;

/** The families of keys under a prefix besides the shards, each in its slot on a Redis Cluster. */
function familiesOf(prefix: string): Record<'claims' | 'queues' | 'gate', string> {
  return { claims: prefix, queues: queuePrefixOf(prefix), gate: gatePrefixOf({ REDIS_PREFIX: prefix, PG_PROVIDER: DEFAULT_PROVIDER }) };
}

/** `{<base>-<n>}` for the first n whose three families are served by three different primaries. */
async function spreadPrefix(cluster: RedisClusterGroup, base: string): Promise<string> {
  for (let n = 0; n < 1_000; n++) {
    const prefix = `{${base}-${n}}`;
    const owners = new Set<number>();
    for (const p of Object.values(familiesOf(prefix))) owners.add(await cluster.ownerOf(await cluster.slotOf(`{${hashTagOf(p)}}`)));
    if (owners.size === 3) return prefix;
  }
  throw new Error('no prefix spreads the three families over three primaries');
}

/** Sums each server's CPU seconds over `fn`. */
async function cpuOver<T>(clients: Redis[], fn: () => Promise<T>): Promise<[T, number[]]> {
  const before = await Promise.all(clients.map((c) => redisCpuSeconds(c)));
  const out = await fn();
  const after = await Promise.all(clients.map((c) => redisCpuSeconds(c)));
  return [out, after.map((a, i) => a - before[i]!)];
}

/** Runs the scenario: the overload on one redis-server and on a cluster of 3 primaries, rounds taking turns. */
export async function runRedisCluster(ctx: BenchContext): Promise<ClusterResult> {
  const { progress } = ctx;
  progress.phase('cluster: starting a Redis Cluster of 3 primaries and one redis-server');
  const cluster = await startRedisCluster({ primaries: 3 });
  let single: RedisServer | null = null;
  const clusterClient = connectRedis({ kind: 'cluster', nodes: parseNodes(cluster.nodeList), tls: false }, { enableAutoPipelining: false }, { hangMs: 0 });
  clusterClient.on('error', () => undefined);
  try {
    single = await startRedisServer();
    const singleClient = single.client();
    const nodeClients = cluster.nodes.map((n) => n.client());
    const primaries: ClusterPrimary[] = cluster.nodes.map((n) => ({ port: n.port, families: [], shards: 0, paymentKeys: 0, cpuSeconds: 0 }));
    const runs: { single: OverloadRun[]; cluster: OverloadRun[] } = { single: [], cluster: [] };
    let singleCpuSeconds = 0;
    const problems: string[] = [];
    const rounds = ctx.opts.quick ? 1 : 2;
    for (let round = 1; round <= rounds; round++) {
      // One redis-server: the same overload, the same settings (nothing persisted), its own server.
      const singleCtx: BenchContext = { ...ctx, redis: singleClient };
      const [s, sCpu] = await cpuOver([singleClient], () =>
        runOverload(singleCtx, { ...CONFIGS.gate1, label: 'one redis-server', env: { REDIS_URL: single!.url } }, round));
      runs.single.push(s);
      singleCpuSeconds += sCpu[0]!;
      problems.push(...s.problems.errors.map((e) => `single #${round}: ${e}`));

      // The cluster: the prefix's hash tag puts the claims, the queues and the gate in three slots
      // of their own, and each shard in one; the run's tag is one whose three slots fall on three
      // primaries (as an operator would pick). The shards fall evenly whatever the tag.
      const prefix = await spreadPrefix(cluster, ctx.newPrefix());
      const clusterCtx: BenchContext = { ...ctx, redis: clusterClient, newPrefix: () => prefix };
      const inspect = async (prefix: string): Promise<void> => {
        for (const [family, p] of Object.entries(familiesOf(prefix))) {
          const owner = await cluster.ownerOf(await cluster.slotOf(`{${hashTagOf(p)}}`));
          const row = primaries.find((x) => x.port === owner)!;
          if (!row.families.includes(family)) row.families.push(family);
        }
        const shardPrefixes = Array.from({ length: SHARDS }, (_, n) => shardPrefix(prefix, n, SHARDS));
        // The shards each primary serves (the same split every round: the shards spread evenly).
        const shardOwners = await Promise.all(shardPrefixes.map(async (p) => cluster.ownerOf(await cluster.slotOf(`{${hashTagOf(p)}}`))));
        for (const row of primaries) row.shards = shardOwners.filter((o) => o === row.port).length;
        for (const [i, node] of nodeClients.entries()) {
          for (const p of shardPrefixes) primaries[i]!.paymentKeys += (await scanKeys(node, `${p}:pay:*`)).filter((k) => !k.endsWith(':hist')).length;
        }
      };
      const [c, cCpu] = await cpuOver(nodeClients, () =>
        runOverload(clusterCtx, { ...CONFIGS.gate1, label: 'Redis Cluster, 3 primaries', env: { REDIS_CLUSTER_NODES: cluster.nodeList, REDIS_SHARDS: String(SHARDS) } }, round, inspect));
      runs.cluster.push(c);
      cCpu.forEach((sec, i) => (primaries[i]!.cpuSeconds += sec));
      problems.push(...c.problems.errors.map((e) => `cluster #${round}: ${e}`));
    }
    const result: ClusterResult = {
      rounds,
      rate: ctx.opts.rate,
      seconds: ctx.opts.seconds,
      single: armOf(runs.single),
      cluster: armOf(runs.cluster),
      utilisationRatio: 0,
      primaries,
      singleCpuSeconds,
      problems: problems.slice(0, 20),
    };
    result.utilisationRatio = result.cluster.utilisationMedian / result.single.utilisationMedian;
    progress.note(
      `cluster: utilisation ${result.cluster.utilisationMedian.toFixed(3)} vs one Redis ${result.single.utilisationMedian.toFixed(3)} (×${result.utilisationRatio.toFixed(3)}); ` +
        `payment keys per primary ${primaries.map((p) => p.paymentKeys).join('/')}; CPU s per primary ${primaries.map((p) => p.cpuSeconds.toFixed(1)).join('/')} vs ${singleCpuSeconds.toFixed(1)}`,
    );
    return result;
  } finally {
    clusterClient.disconnect();
    await single?.stop();
    await cluster.stop();
  }
}
