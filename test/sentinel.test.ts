/**
 * The whole gateway on a Sentinel group (1 primary, 1 replica, 3 sentinels; the data nodes with
 * min-replicas-to-write 1), its primary killed with SIGKILL under load, then brought back as a
 * replica. Intake waits for the replica (REDIS_WAIT_REPLICAS=1), so every payment answered 202
 * survives the failover; merchants retry everything else with the same key. Afterwards every
 * acknowledged payment is final, as the PG's ledger holds it, and none is charged twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants, getJson, startSentinelGroup, type LedgerEntry, type SentinelGroup } from '@sluice/test-support';
import { createRetrying, drain, readPayments, startStack, type Stack } from './support/stack.ts';

let group: SentinelGroup;
let s: Stack;
beforeAll(async () => {
  group = await startSentinelGroup({
    replicas: 1, sentinels: 3, downAfterMs: 1_000,
    nodeArgs: [['min-replicas-to-write', '1'], ['min-replicas-max-lag', '10']],
  });
  s = await startStack({
    env: {
      REDIS_SENTINELS: group.sentinelList, REDIS_SENTINEL_NAME: group.name, REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '500',
      REDIS_HANG_MS: '2000', WORKER_LOCK_MS: '5000',
    },
  });
});
afterAll(async () => {
  await s?.stop();
  await group?.stop();
});

describe('Sentinel failover under load', () => {
  it('loses no acknowledged payment and charges none twice when the primary is killed -9', async () => {
    const run = Date.now().toString(36);
    const firstPort = await group.primaryPort();
    const creates: Promise<{ id: string | null; answers: number[] }>[] = [];
    // 100/s for 8 s; the primary dies 3 s in.
    const load = (async () => {
      for (let i = 0; i < 800; i++) {
        creates.push(createRetrying(s.apiUrl, 'sen', i, run));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await new Promise((r) => setTimeout(r, 3_000));
    const old = group.nodes.find((n) => n.port === firstPort)!;
    await old.kill9();
    const newPort = await group.waitForFailover(firstPort, 30_000);
    expect(newPort).not.toBe(firstPort);
    // Back as a replica of the new primary, as an operator brings back a node that kept nothing:
    // writes resume once it is in sync (min-replicas-to-write).
    await old.restart([['replicaof', '127.0.0.1', String(newPort)]]);
    await load;
    const results = await Promise.all(creates);
    const ids = results.map((r) => r.id).filter((id): id is string => id !== null);
    // Every payment was accepted in the end, on its own key: nothing refused for good.
    expect(ids).toHaveLength(800);
    expect(new Set(ids).size).toBe(800);
    // Some were told to retry while Redis failed over (503s or no answer), none was given a 4xx.
    const retried = results.filter((r) => r.answers.length > 1);
    expect(retried.length).toBeGreaterThan(0);
    expect(results.flatMap((r) => r.answers).filter((a) => a >= 400 && a < 500)).toEqual([]);

    await drain(s.redis, s.prefix, 120_000);
    const records = await readPayments(s.redis, s.prefix, ids);
    const views = new Map([...records].map(([id, r]) => [id, { id, paymentKey: r.paymentKey!, status: r.status! }]));
    const ledger = (await getJson<{ payments: Record<string, LedgerEntry> }>(`${s.simUrl}/__sim/ledger`)).payments;
    // What each node and sentinel says, printed with the report if it fails.
    const roles = await Promise.all(group.nodes.map((n) => n.client().call('ROLE').then((r) => `${n.port}: ${(r as unknown[])[0]}`, () => `${n.port}: away`)));
    const named = await group.primaryPorts();
    const report = { ...checkInvariants(ids, views, ledger), redis: { firstPort, newPort, roles, named } };
    expect(report).toMatchObject({ lost: [], notFinal: [], doubleCharges: [], mismatches: [], final: 800 });
  });
});
