/**
 * REDIS_WAIT_REPLICAS on a Redis Cluster (3 primaries with a replica each, started here): the
 * WAIT goes to the primary that serves the payments' slot (REDIS_PREFIX's hash tag), on a
 * connection of its own to that node. A write is confirmed only when that primary's replica holds
 * it, and only if the slot's primary is the same at the answer as at the mark.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNodes } from '@sluice/config';
import { startRedisCluster, type RedisClusterGroup } from '@sluice/test-support';
import { connectRedis, type Redis } from './redis.ts';
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
});
