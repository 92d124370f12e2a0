/**
 * Start-up checks on the Redis Sluice runs on. An evicted payment or idempotency key is a lost
 * payment or a double charge, so Sluice refuses to start on an evicting `maxmemory-policy` unless
 * REDIS_ALLOW_EVICTION=true. A Redis without persistence loses every acknowledged payment when it
 * restarts, so that is warned about loudly. Managed Redis often disables CONFIG; then we can only
 * warn that we could not check.
 *
 * On a Redis Cluster (REDIS_CLUSTER_NODES) every primary is checked. A node of a cluster reached
 * through REDIS_URL is refused: a plain client does not follow the cluster's MOVED redirections,
 * so it would work only while that node owns Sluice's slot, and fail (writes refused, not money
 * lost) the moment the slot moves or its primary fails over.
 *
 * With REDIS_WAIT_REPLICAS, a primary with more replicas than the WAIT counts is warned about:
 * `WAIT n` is answered once any n replicas hold a write, and Sentinel (or the cluster) may promote
 * another, which then brings the others in line with itself: a payment answered 202 gone.
 */
import { isCluster, type Redis } from './redis.ts';
import { DEFAULT_PROVIDER } from '@sluice/config';
import { makeKeys, type Keys } from './keys.ts';

/** Where the start-up checks log a warning. */
export interface Warn {
  warn(obj: object, msg: string): void;
}

/** What the start-up checks found of Redis's persistence and eviction. */
export interface RedisSafety {
  policy: string | null;
  aof: boolean | null;
  /** `appendfsync` (always | everysec | no), null where CONFIG is not allowed. */
  fsync: string | null;
  rdb: boolean | null;
  usedMemory: number;
  maxMemory: number;
  /** `cluster_enabled:1`: a node of a Redis Cluster. */
  cluster: boolean;
  /** Replicas connected to this node (`connected_slaves`), 0 for a replica or none. */
  replicas: number;
}

/** Reads the settings that matter (null where CONFIG is not allowed). */
export async function readRedisSafety(redis: Redis): Promise<RedisSafety> {
  const get = async (name: string): Promise<string | null> => {
    try {
      const r = (await redis.config('GET', name)) as string[];
      return r[1] ?? null;
    } catch {
      return null;
    }
  };
  const [policy, aof, fsync, save, info, cluster, replication] = await Promise.all([
    get('maxmemory-policy'), get('appendonly'), get('appendfsync'), get('save'), redis.info('memory'), redis.info('cluster').catch(() => ''),
    redis.info('replication').catch(() => ''),
  ]);
  const field = (k: string) => Number(new RegExp(`^${k}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return {
    policy,
    aof: aof === null ? null : aof === 'yes',
    fsync,
    rdb: save === null ? null : save.trim() !== '',
    usedMemory: field('used_memory'),
    maxMemory: field('maxmemory'),
    cluster: /^cluster_enabled:1/m.test(cluster),
    replicas: /^role:master/m.test(replication) ? Number(/^connected_slaves:(\d+)/m.exec(replication)?.[1] ?? 0) : 0,
  };
}

/**
 * Throws on an evicting policy (unless allowed); warns on missing persistence, and on a primary
 * with more replicas than `waitReplicas` (REDIS_WAIT_REPLICAS, when above 0) counts.
 */
export async function checkRedisSafety(redis: Redis, allowEviction: boolean, log: Warn, waitReplicas = 0): Promise<RedisSafety> {
  if (isCluster(redis)) {
    // Every primary: Sluice's slot may move to any of them.
    await redis.ping();
    const primaries = (redis as unknown as { nodes(role: 'master'): Redis[] }).nodes('master');
    let first: RedisSafety | null = null;
    for (const node of primaries) {
      const at = `${node.options.host}:${node.options.port}`;
      const s = await checkNode(node, allowEviction, { warn: (obj, msg) => log.warn({ node: at, ...obj }, msg) }, true, waitReplicas);
      first ??= s;
    }
    if (!first) throw new Error('the Redis Cluster named no primary');
    return first;
  }
  return checkNode(redis, allowEviction, log, false, waitReplicas);
}

async function checkNode(redis: Redis, allowEviction: boolean, log: Warn, inCluster: boolean, waitReplicas: number): Promise<RedisSafety> {
  const s = await readRedisSafety(redis);
  if (s.cluster && !inCluster) {
    throw new Error('REDIS_URL is a node of a Redis Cluster: give the cluster\'s nodes in REDIS_CLUSTER_NODES instead (a single-node client does not follow the cluster\'s redirections; README: "Redis Cluster").');
  }
  if (s.policy === null) log.warn({}, 'cannot read Redis CONFIG; make sure maxmemory-policy is noeviction and AOF is on');
  else if (s.policy !== 'noeviction') {
    if (!allowEviction) {
      throw new Error(`Redis maxmemory-policy is ${s.policy}: Sluice needs noeviction (an evicted key is a lost payment or a double charge). Set REDIS_ALLOW_EVICTION=true to start anyway, never in production.`);
    }
    log.warn({ policy: s.policy }, 'Redis may evict keys (REDIS_ALLOW_EVICTION=true)');
  }
  if (s.aof === false && s.rdb === false) {
    log.warn({ appendonly: 'no', save: '' }, 'Redis persistence is off: a Redis restart loses every payment it holds. Use appendonly yes with appendfsync always.');
  } else if (s.aof === false) {
    log.warn({ appendonly: 'no' }, 'Redis AOF is off: snapshots alone lose the writes since the last one');
  } else if (s.aof === true && s.fsync !== null && s.fsync !== 'always') {
    log.warn({ appendfsync: s.fsync }, 'Redis appendfsync is not always: a crash can lose acknowledged writes (payments answered 202, phase changes). Use appendfsync always.');
  }
  if (waitReplicas > 0 && s.replicas > waitReplicas) {
    log.warn(
      { replicas: s.replicas, REDIS_WAIT_REPLICAS: waitReplicas },
      `Redis primary has ${s.replicas} replicas but REDIS_WAIT_REPLICAS is ${waitReplicas}: a payment answered 202 may rest on a replica that a failover does not promote, and be lost. Set REDIS_WAIT_REPLICAS=${s.replicas}.`,
    );
  }
  return s;
}

/** Share of maxmemory in use (0 when no maxmemory is set). */
export function memoryPressure(s: Pick<RedisSafety, 'usedMemory' | 'maxMemory'>): number {
  return s.maxMemory > 0 ? s.usedMemory / s.maxMemory : 0;
}

/**
 * Refuses to start with a REDIS_SHARDS other than the one the keys were written with: a payment's
 * id names its shard, and a process that counts the shards otherwise would not see some of them
 * (their payments would wait for ever). The first process to start writes the count.
 */
export async function checkShardCount(redis: Redis, keys: Pick<Keys, 'shardCount' | 'shards'>): Promise<void> {
  const want = String(keys.shards.length);
  await redis.set(keys.shardCount, want, 'NX');
  const have = await redis.get(keys.shardCount);
  if (have !== null && have !== want) {
    throw new Error(`REDIS_SHARDS is ${want}, but the payments under this REDIS_PREFIX were written with ${have} shards: start with REDIS_SHARDS=${have} (the count is fixed for the life of the keys).`);
  }
}

/** The keys under `prefix` over the shard count its processes wrote down at start-up (one if none did yet): for tools and tests that read a deployment's keys. */
export async function keysAsWritten(redis: Redis, prefix: string): Promise<Keys> {
  return makeKeys(prefix, DEFAULT_PROVIDER, Number((await redis.get(makeKeys(prefix).shardCount)) ?? 1));
}
