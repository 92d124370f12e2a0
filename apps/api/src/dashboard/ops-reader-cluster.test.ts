/**
 * The operators' reads on a Redis Cluster (3 primaries started here): right after the payments'
 * slot moves to another primary, a client that still maps it to the old one must read the same
 * snapshot. ioredis redirects a pipeline as a whole only when every command in it is redirected,
 * so a TIME or an INFO in it (which any node answers) must name one of the keys too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNodes } from '@sluice/config';
import { connectRedis, makeKeys, type Redis } from '@sluice/store';
import { startRedisCluster, type RedisClusterGroup } from '@sluice/test-support';
import { redisMemoryCheck } from './readiness.ts';
import { OpsReader } from './ops-reader.ts';

let cluster: RedisClusterGroup;
let redis: Redis;
beforeAll(async () => {
  cluster = await startRedisCluster({ primaries: 3 });
  redis = connectRedis({ kind: 'cluster', nodes: parseNodes(cluster.nodeList), tls: false }, {}, { hangMs: 0 });
});
afterAll(async () => {
  redis?.disconnect();
  await cluster?.stop();
});

describe('OpsReader on a Redis Cluster', () => {
  it('reads the snapshot and the memory check through a slot move, from the slot\'s new owner', async () => {
    const keys = makeKeys('{ops}');
    await redis.zadd(keys.open, Date.now(), 'p1', Date.now(), 'p2');
    await redis.hset(keys.counters, 'intake:created', 2);
    const reader = new OpsReader(async () => redis, keys, 500);
    const memory = redisMemoryCheck(redis, keys);
    expect((await reader.snapshot(10)).backlog).toBe(2);

    const slot = await cluster.slotOf('{ops}');
    for (let move = 0; move < 3; move++) {
      const from = await cluster.ownerOf(slot);
      const to = cluster.nodes.map((n) => n.port).find((p) => p !== from)!;
      await cluster.moveSlot(slot, to);
      // Several at once, all sent on the old map of the slots.
      const snaps = await Promise.all([reader.snapshot(10), reader.snapshot(10), reader.snapshot(10)]);
      for (const snap of snaps) {
        expect(snap.backlog).toBe(2);
        expect(snap.counters['intake:created']).toBe(2);
        // The memory figure is the owner's: the only node holding keys here.
        expect(snap.memory.usedBytes).toBeGreaterThan(0);
      }
      expect(await memory.check()).toBe('ok');
    }
  });

  it('reads through several slots moved one after another, each a slot the snapshot reads', async () => {
    const keys = makeKeys('{opsm}', undefined, 4);
    for (const [i, s] of keys.shards.entries()) await redis.zadd(s.open, Date.now(), `p${i}`);
    const reader = new OpsReader(async () => redis, keys, 500);
    expect((await reader.snapshot(10)).backlog).toBe(4);
    for (let round = 0; round < 3; round++) {
      // The root's slot and every shard's, each to another primary, before the next read.
      for (const prefix of ['{opsm}', ...keys.shards.map((s) => s.prefix)]) {
        const slot = await cluster.slotOf(prefix);
        const from = await cluster.ownerOf(slot);
        await cluster.moveSlot(slot, cluster.nodes.map((n) => n.port).find((p) => p !== from)!);
      }
      const snaps = await Promise.all([reader.snapshot(10), reader.snapshot(10), reader.snapshot(10)]);
      expect(snaps.map((s) => s.backlog)).toEqual([4, 4, 4]);
    }
  });
});
