/**
 * The whole gateway on a Redis Cluster of 3 primaries with a replica each (`min-replicas-to-write
 * 1`) and 8 payment shards, the primary of the claims' slot (which serves payment shards too)
 * killed with SIGKILL under load: the cluster promotes its replica, and the old primary comes back
 * as a replica. Intake waits for the replicas (REDIS_WAIT_REPLICAS=1, at the primary of the
 * claims' slot and at that of the payment's shard), so every payment answered 202 survives;
 * merchants retry everything else with the same key. Afterwards every acknowledged payment is
 * final, as the PG's ledger holds it, and none is charged twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashTagOf } from '@sluice/config';
import { checkInvariants, getJson, startRedisCluster, type LedgerEntry, type RedisClusterGroup } from '@sluice/test-support';
import { createRetrying, drain, ensureServesShard, readPayments, startStack, type Stack } from './support/stack.ts';

const SHARDS = 8;
let cluster: RedisClusterGroup;
let s: Stack;
beforeAll(async () => {
  cluster = await startRedisCluster({ primaries: 3, replicas: 1, nodeArgs: [['min-replicas-to-write', '1'], ['min-replicas-max-lag', '10']] });
  s = await startStack({
    env: { REDIS_CLUSTER_NODES: cluster.nodeList, REDIS_SHARDS: String(SHARDS), REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '500', REDIS_HANG_MS: '2000', WORKER_LOCK_MS: '5000' },
  });
});
afterAll(async () => {
  await s?.stop();
  await cluster?.stop();
});

describe('Redis Cluster failover under load', () => {
  it('loses no acknowledged payment and charges none twice when the claims\' primary, with shards of its own, is killed -9', async () => {
    const run = Date.now().toString(36);
    const slot = await cluster.slotOf(`{${hashTagOf(s.prefix)}}`);
    const firstPort = await cluster.ownerOf(slot);
    await ensureServesShard(cluster, s.prefix, SHARDS, firstPort);
    const creates: Promise<{ id: string | null; answers: number[] }>[] = [];
    // 100/s for 8 s; the primary dies 3 s in.
    const load = (async () => {
      for (let i = 0; i < 800; i++) {
        creates.push(createRetrying(s.apiUrl, 'clf', i, run));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await new Promise((r) => setTimeout(r, 3_000));
    const old = cluster.nodes.find((n) => n.port === firstPort)!;
    await old.kill9();
    // The cluster promotes the replica (the survivors see the slot served by another node).
    const others = cluster.nodes.filter((n) => n !== old);
    await expect.poll(async () => {
      const ranges = (await others[0]!.client().call('CLUSTER', 'SLOTS').catch(() => [])) as [number, number, [string, number]][];
      const r = ranges.find(([lo, hi]) => slot >= lo && slot <= hi);
      return r ? Number(r[2][1]) : firstPort;
    }, { timeout: 30_000, interval: 200 }).not.toBe(firstPort);
    // Back, as a replica of the new primary (its nodes.conf tells it whose slots it had).
    await old.restart();
    await load;
    const results = await Promise.all(creates);
    const ids = results.map((r) => r.id).filter((id): id is string => id !== null);
    expect(ids).toHaveLength(800);
    expect(new Set(ids).size).toBe(800);
    // Some were told to retry while the cluster failed over, none was given a 4xx.
    expect(results.filter((r) => r.answers.length > 1).length).toBeGreaterThan(0);
    expect(results.flatMap((r) => r.answers).filter((a) => a >= 400 && a < 500)).toEqual([]);

    await drain(s.redis, s.prefix, 120_000);
    const records = await readPayments(s.redis, s.prefix, ids);
    const views = new Map([...records].map(([id, r]) => [id, { id, paymentKey: r.paymentKey!, status: r.status! }]));
    const ledger = (await getJson<{ payments: Record<string, LedgerEntry> }>(`${s.simUrl}/__sim/ledger`)).payments;
    const report = checkInvariants(ids, views, ledger);
    expect(report).toMatchObject({ lost: [], notFinal: [], doubleCharges: [], mismatches: [], final: 800 });
  });
});
