/**
 * REDIS_WAIT_REPLICAS on a Redis Cluster (3 primaries with a replica each, started here): the
 * WAIT goes to the primary that serves the payments' slot (REDIS_PREFIX's hash tag), on a
 * connection of its own to that node. A write is confirmed only when that primary's replica holds
 * it, and only if the slot's primary is the same at the answer as at the mark. With several
 * payment shards a payment's write is confirmed only when both its slots' primaries' replicas hold
 * it: the root's (its claims) and its shard's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNodes } from '@sluice/config';
import { startRedisCluster, type RedisClusterGroup } from '@sluice/test-support';
import { connectRedis, type Redis } from './redis.ts';
import { shardPrefix } from './keys.ts';
import { newPaymentId } from './record.ts';
import { replicaWaiterOf, type ReplicaWaiter } from './replicas.ts';

const PREFIX = '{waits}';
let cluster: RedisClusterGroup;
let writer: Redis;
let waiter: ReplicaWaiter;
beforeAll(async () => {
  cluster = await startRedisCluster({ primaries: 3, replicas: 1 });
  writer = connectRedis({ kind: 'cluster', nodes: parseNodes(cluster.nodeList), tls: false }, {}, { hangMs: 0 });
  writer.on('error', () => undefined);
  waiter = replicaWaiterOf({ REDIS_WAIT_REPLICAS: 1, REDIS_WAIT_TIMEOUT_MS: 500, REDIS_PREFIX: PREFIX }, writer)!;
});
afterAll(async () => {
  await waiter?.close();
  writer?.disconnect();
  await cluster?.stop();
});

/** A write through the cluster client, bracketed by the waiter's mark and confirm. */
async function confirmedWrite(value: string): Promise<boolean> {
  const mark = waiter.mark();
  await writer.set(`${PREFIX}:probe`, value);
  return waiter.confirm(mark);
}

describe('ReplicaWaiter on a Redis Cluster', () => {
  it('confirms a write once the replica of the slot\'s primary holds it, and not while that replica is away', async () => {
    await writer.set(`${PREFIX}:probe`, '0'); // the client knows the slots
    // Once the waiter's connection to the slot's primary is up and the replica keeps up (a
    // loaded machine may take longer than one WAIT's 500 ms for either).
    await expect.poll(() => confirmedWrite('1'), { timeout: 20_000, interval: 200 }).toBe(true);
    const slot = await cluster.slotOf(PREFIX);
    const owner = await cluster.ownerOf(slot);
    const [replicaPort] = await cluster.replicasOf(owner);
    const replica = cluster.nodes.find((n) => n.port === replicaPort)!;
    await replica.kill9();
    try {
      expect(await confirmedWrite('2')).toBe(false);
    } finally {
      await replica.restart();
    }
    await expect.poll(() => confirmedWrite('3'), { timeout: 20_000, interval: 200 }).toBe(true);
  });

  it('does not confirm a write whose slot moved to another primary between the mark and the answer', async () => {
    const slot = await cluster.slotOf(PREFIX);
    const owner = await cluster.ownerOf(slot);
    const to = (await cluster.primaries()).find((p) => p !== owner)!;
    const mark = waiter.mark();
    await cluster.moveSlot(slot, to);
    await writer.set(`${PREFIX}:probe`, '4'); // redirected to the new primary
    expect(await waiter.confirm(mark)).toBe(false);
    // The next write is confirmed at the new primary, on a waiter connection opened there.
    await expect.poll(() => confirmedWrite('5'), { timeout: 10_000, interval: 200 }).toBe(true);
    expect(await cluster.ownerOf(slot)).toBe(to);
  });

  it('with payment shards, confirms a payment\'s write only once the replicas of its shard\'s primary and of the root\'s hold it', async () => {
    const shards = 8;
    const sharded = replicaWaiterOf({ REDIS_WAIT_REPLICAS: 1, REDIS_WAIT_TIMEOUT_MS: 500, REDIS_PREFIX: PREFIX, REDIS_SHARDS: shards }, writer)!;
    try {
      const rootOwner = await cluster.ownerOf(await cluster.slotOf(PREFIX));
      // A shard whose slot another primary serves than the root's.
      const owners = await Promise.all(Array.from({ length: shards }, async (_, n) => cluster.ownerOf(await cluster.slotOf(shardPrefix(PREFIX, n, shards)))));
      let shard = owners.findIndex((o) => o !== rootOwner);
      if (shard < 0) {
        shard = 0;
        await cluster.moveSlot(await cluster.slotOf(shardPrefix(PREFIX, 0, shards)), (await cluster.primaries()).find((p) => p !== rootOwner)!);
      }
      const shardOwner = await cluster.ownerOf(await cluster.slotOf(shardPrefix(PREFIX, shard, shards)));
      const id = newPaymentId(Date.now(), shard);
      const write = async (v: string) => {
        const mark = sharded.mark(id);
        await Promise.all([writer.set(`${PREFIX}:claim`, v), writer.set(`${shardPrefix(PREFIX, shard, shards)}:pay:${id}`, v)]);
        return sharded.confirm(mark);
      };
      await expect.poll(() => write('1'), { timeout: 20_000, interval: 200 }).toBe(true);
      // The shard's primary's replica away: not confirmed, though the root's replica holds its part.
      const [replicaPort] = await cluster.replicasOf(shardOwner);
      const replica = cluster.nodes.find((n) => n.port === replicaPort)!;
      await replica.kill9();
      try {
        expect(await write('2')).toBe(false);
      } finally {
        await replica.restart();
      }
      await expect.poll(() => write('3'), { timeout: 20_000, interval: 200 }).toBe(true);
    } finally {
      await sharded.close();
    }
  });
});
