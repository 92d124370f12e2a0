/**
 * Start-up checks against a real redis-server: an evicting policy is refused unless overridden,
 * missing persistence is warned about, and a node of a Redis Cluster is refused.
 */
import { startProcess, startRedisServer } from '@sluice/test-support';
import { checkRedisSafety, memoryPressure } from '@sluice/store';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from './support/redis-server.ts';

let server: PrivateRedis;
let redis: Redis;
beforeAll(async () => {
  server = await startPrivateRedis();
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

const collect = () => {
  const warnings: string[] = [];
  return { warnings, log: { warn: (_o: object, msg: string) => void warnings.push(msg) } };
};

describe('Redis safety at start-up', () => {
  it('accepts noeviction with AOF, silently', async () => {
    const { warnings, log } = collect();
    const s = await checkRedisSafety(redis, false, log);
    expect(s).toMatchObject({ policy: 'noeviction', aof: true });
    expect(warnings).toEqual([]);
  });

  it('refuses an evicting policy, unless explicitly allowed (then warns)', async () => {
    await redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
    await expect(checkRedisSafety(redis, false, collect().log)).rejects.toThrow(/noeviction/);
    const { warnings, log } = collect();
    await checkRedisSafety(redis, true, log);
    expect(warnings.join()).toMatch(/evict/);
    await redis.config('SET', 'maxmemory-policy', 'noeviction');
  });

  it('warns when persistence is off', async () => {
    await redis.config('SET', 'appendonly', 'no');
    const { warnings, log } = collect();
    await checkRedisSafety(redis, false, log);
    expect(warnings.join()).toMatch(/persistence is off/);
    await redis.config('SET', 'appendonly', 'yes');
  });

  it('warns when AOF does not fsync every write', async () => {
    await redis.config('SET', 'appendfsync', 'everysec');
    const { warnings, log } = collect();
    expect(await checkRedisSafety(redis, false, log)).toMatchObject({ aof: true, fsync: 'everysec' });
    expect(warnings.join()).toMatch(/appendfsync is not always/);
    await redis.config('SET', 'appendfsync', 'always');
    const quiet = collect();
    await checkRedisSafety(redis, false, quiet.log);
    expect(quiet.warnings).toEqual([]);
  });

  it('warns when the primary has more replicas than REDIS_WAIT_REPLICAS waits for', async () => {
    const replicaOf = () => startRedisServer([['replicaof', '127.0.0.1', String(server.port)]]);
    const replicas = [await replicaOf(), await replicaOf()];
    try {
      for (let i = 0; i < 100 && !/connected_slaves:2/.test(await redis.info('replication')); i++) await new Promise((r) => setTimeout(r, 50));
      const one = collect();
      expect(await checkRedisSafety(redis, false, one.log, 1)).toMatchObject({ replicas: 2 });
      expect(one.warnings.join()).toMatch(/2 replicas but REDIS_WAIT_REPLICAS is 1: .* Set REDIS_WAIT_REPLICAS=2/);
      const both = collect();
      await checkRedisSafety(redis, false, both.log, 2);
      expect(both.warnings).toEqual([]);
      // Not waiting at all is a choice of its own (no WAIT, no claim): not this warning.
      const none = collect();
      await checkRedisSafety(redis, false, none.log, 0);
      expect(none.warnings).toEqual([]);
      // A replica is not a primary: nothing to count there.
      expect(await checkRedisSafety(replicas[0]!.client(), false, collect().log, 1)).toMatchObject({ replicas: 0 });
    } finally {
      for (const r of replicas) await r.stop();
    }
  });

  it('measures memory pressure against maxmemory', async () => {
    expect(memoryPressure({ usedMemory: 900, maxMemory: 1000 })).toBe(0.9);
    expect(memoryPressure({ usedMemory: 900, maxMemory: 0 })).toBe(0);
  });

  it('refuses a node of a Redis Cluster, and the API and the worker exit 1 saying why', async () => {
    const node = await startRedisServer([['cluster-enabled', 'yes'], ['cluster-config-file', 'nodes.conf']]);
    const client = new Redis(node.url);
    try {
      await expect(checkRedisSafety(client, false, collect().log)).rejects.toThrow(/Redis Cluster/);
      for (const entry of ['apps/api/src/main.ts', 'apps/worker/src/main.ts']) {
        const p = startProcess(entry, {
          REDIS_URL: node.url, SLUICE_DEMO: '1', API_KEY_PEPPER: 'pepper-for-this-test-only-0123456789', PG_BASE_URL: 'http://127.0.0.1:9', PG_SECRET_KEY: 'test_sk_sluice_demo',
        });
        const code = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
        expect(code).toBe(1);
        expect(p.output()).toContain('Redis Cluster');
      }
    } finally {
      client.disconnect();
      await node.stop();
    }
  });
});
