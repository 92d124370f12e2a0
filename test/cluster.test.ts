/**
 * The whole gateway on a Redis Cluster of 3 primaries (REDIS_CLUSTER_NODES, REDIS_PREFIX with a
 * hash tag, REDIS_SHARDS=16): intake, the fair queues, BullMQ, the permit gate, the worker and long
 * polls, through the cluster client. Sluice's keys are in slots of their own (the claims at the
 * root, each payment shard's state, BullMQ's queues, the permit gate), each on the primary that
 * serves it, and the payments spread over every primary; then the claims', a shard's and the
 * queues' slots move to other primaries under load (the client follows MOVED and ASK), and
 * nothing is lost, charged twice or shown other than as the PG holds it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants, getJson, startRedisCluster, type LedgerEntry, type RedisClusterGroup } from '@sluice/test-support';
import { DEFAULT_PROVIDER, hashTagOf } from '@sluice/config';
import { gatePrefixOf } from '@sluice/permit-gate';
import { queuePrefixOf } from '@sluice/queue';
import { shardOfPaymentId, shardPrefix } from '@sluice/store';
import { spawnSync } from 'node:child_process';
import { ADMIN, DEMO_KEY, drain, postPayment, readPayments, startStack, type Stack } from './support/stack.ts';

interface Stats {
  status429: number;
  maxInWindow: number;
}

const SHARDS = 16;
let cluster: RedisClusterGroup;
let s: Stack;
beforeAll(async () => {
  cluster = await startRedisCluster({ primaries: 3 });
  s = await startStack({
    // 16 shards over 3 primaries whose slots are split in equal ranges: 5 or 6 on each.
    env: { REDIS_CLUSTER_NODES: cluster.nodeList, REDIS_SHARDS: String(SHARDS) },
    sim: { SIM_LATENCY_MEDIAN_MS: '20', SIM_LATENCY_P99_MS: '200', SIM_DECLINE_RATE: '0.1' },
  });
});
afterAll(async () => {
  await s?.stop();
  await cluster?.stop();
});

/** The key families and their prefixes: the claims (the root), BullMQ's queues, the permit gate, and each payment shard. */
const families = (): Record<string, string> => ({
  claims: s.prefix, queues: queuePrefixOf(s.prefix), gate: gatePrefixOf({ REDIS_PREFIX: s.prefix, PG_PROVIDER: DEFAULT_PROVIDER }),
  ...Object.fromEntries(Array.from({ length: SHARDS }, (_, n) => [`s${n}`, shardPrefix(s.prefix, n, SHARDS)])),
});

/** The slot of a prefix's hash tag. */
const slotOf = (prefix: string): Promise<number> => cluster.slotOf(`{${hashTagOf(prefix)}}`);

/** Keys under `prefix` held by the node on `port` (KEYS on that node alone). */
async function keysOn(port: number, prefix: string): Promise<number> {
  const node = cluster.nodes.find((n) => n.port === port)!;
  return ((await node.client().keys(`${prefix}:*`)) as string[]).length;
}

/** Payment hashes on each primary (KEYS on each node alone, every shard's prefix). */
async function paymentsPerPrimary(): Promise<number[]> {
  const out: number[] = [];
  for (const node of cluster.nodes) {
    let n = 0;
    for (let i = 0; i < SHARDS; i++) n += ((await node.client().keys(`${shardPrefix(s.prefix, i, SHARDS)}:pay:*`)) as string[]).filter((k) => !k.endsWith(':hist')).length;
    out.push(n);
  }
  return out;
}

/** Checks that every key of each family is on the primary that owns the family's slot; returns those owners. */
async function expectEachFamilyOnItsOwner(): Promise<Record<string, number>> {
  const owners: Record<string, number> = {};
  for (const [family, prefix] of Object.entries(families())) {
    const owner = await cluster.ownerOf(await slotOf(prefix));
    owners[family] = owner;
    // (A shard may have had no payment yet.)
    if (!family.startsWith('s')) expect(await keysOn(owner, prefix), family).toBeGreaterThan(0);
    for (const n of cluster.nodes.filter((x) => x.port !== owner)) expect(await keysOn(n.port, prefix), `${family} on ${n.port}`).toBe(0);
  }
  return owners;
}

/** A merchant's create: retried with the same key on a 503, as the API asks, for up to 30 s. */
async function createUntilAccepted(p: { paymentKey: string; orderId: string; amount: number }, idemKey: string) {
  const answers: number[] = [];
  const until = Date.now() + 30_000;
  for (;;) {
    const r = await postPayment(s.apiUrl, p, idemKey);
    answers.push(r.status);
    if (r.status !== 503 || Date.now() > until) return { ...r, answers };
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** `/metrics` and `/dashboard/data` answer 200 (with `created` payments counted, when given). */
async function expectOperatorViews(created?: number): Promise<void> {
  const auth = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`;
  const dashboard = await fetch(`${s.apiUrl}/dashboard/data`, { headers: { authorization: auth } });
  expect(dashboard.status, await dashboard.text()).toBe(200);
  const metrics = await fetch(`${s.apiUrl}/metrics`, { headers: { authorization: auth } });
  const text = await metrics.text();
  expect(metrics.status, text).toBe(200);
  if (created !== undefined) expect(text).toMatch(new RegExp(`sluice_payments_created_total ${created}\\b`));
}

describe('Redis Cluster', () => {
  it('runs payments end to end with every key in the prefix\'s slot, and through a slot move under load', async () => {
    const run = Date.now().toString(36);
    // Every family in a slot of its own (on one primary or several, as the slots fall).
    const allSlots = await Promise.all(Object.values(families()).map(slotOf));
    expect(new Set(allSlots).size).toBe(SHARDS + 3);
    const slots = { claims: await slotOf(families().claims!), queues: await slotOf(families().queues!), gate: await slotOf(families().gate!) };

    // A first batch, and a long poll that hears the payment's end through the cluster's pub/sub.
    const first = await Promise.all(
      Array.from({ length: 150 }, (_, i) => postPayment(s.apiUrl, { paymentKey: i % 25 === 0 ? `sim_nosession_${run}_${i}` : `pk_${run}_${i}`, orderId: `order-${run}-${i}`, amount: 1_000 + i }, `cl-${run}-${i}`)),
    );
    expect(first.map((p) => p.status)).toEqual(Array(150).fill(202));
    const polled = await getJson<{ status: string }>(`${s.apiUrl}/v1/payments/${first[1]!.body.id}?wait=20`, { headers: { authorization: `Bearer ${DEMO_KEY}` } });
    expect(['APPROVED', 'DECLINED']).toContain(polled.status);
    await drain(s.redis, s.prefix, 60_000);

    // Every key Sluice wrote (claims; payments and fair queues in their shards; BullMQ's; the
    // gate's) is on its slot's owner, and every primary holds payments.
    const owners = await expectEachFamilyOnItsOwner();
    expect(await keysOn(owners.claims!, s.prefix)).toBeGreaterThan(150);
    const payments = await paymentsPerPrimary();
    expect(payments.reduce((a, b) => a + b, 0)).toBe(150);
    // Each primary serves 5 or 6 of the 16 shards: about a third of the payments each.
    expect(payments.every((c) => c >= 0.2 * 150), JSON.stringify(payments)).toBe(true);
    const movedShard = shardOfPaymentId(first[0]!.body.id);
    const shardSlot = await slotOf(shardPrefix(s.prefix, movedShard, SHARDS));

    // The claims' slot, a payment shard's and the queues' move to other primaries while payments
    // arrive: MOVED and ASK are followed.
    const others = (port: number) => cluster.nodes.map((n) => n.port).filter((p) => p !== port);
    const claimsTo = others(owners.claims!)[0]!;
    const shardTo = others(owners[`s${movedShard}`]!)[1]!;
    const queuesTo = others(owners.queues!)[1]!;
    const second: Promise<{ status: number; body: { id: string }; answers: number[] }>[] = [];
    const load = (async () => {
      for (let i = 150; i < 450; i++) {
        second.push(createUntilAccepted({ paymentKey: `pk_${run}_${i}`, orderId: `order-${run}-${i}`, amount: 1_000 + i }, `cl-${run}-${i}`));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await cluster.moveSlot(slots.claims, claimsTo);
    await cluster.moveSlot(shardSlot, shardTo);
    await cluster.moveSlot(slots.queues, queuesTo);
    // The operator's views at once, on connections that still map the slots to the old owners:
    // their pipelines must be redirected whole (a TIME or INFO in them must name a key too).
    await expectOperatorViews();
    await load;
    const posted = await Promise.all(second);
    // Each accepted in the end; what was answered before is only ever a 503 to retry (a script
    // whose keys were split by the move, TRYAGAIN, did not run), never a 4xx or a 500.
    expect(posted.map((p) => p.status)).toEqual(Array(300).fill(202));
    expect(posted.flatMap((p) => p.answers).filter((a) => a !== 202 && a !== 503)).toEqual([]);
    expect(await cluster.ownerOf(slots.claims)).toBe(claimsTo);
    expect(await cluster.ownerOf(shardSlot)).toBe(shardTo);
    expect(await cluster.ownerOf(slots.queues)).toBe(queuesTo);

    await drain(s.redis, s.prefix, 90_000);
    const ids = [...first, ...posted].map((p) => p.body.id);
    const records = await readPayments(s.redis, s.prefix, ids);
    const views = new Map([...records].map(([id, r]) => [id, { id, paymentKey: r.paymentKey!, status: r.status! }]));
    const ledger = (await getJson<{ payments: Record<string, LedgerEntry> }>(`${s.simUrl}/__sim/ledger`)).payments;
    const report = checkInvariants(ids, views, ledger);
    expect(report).toMatchObject({ lost: [], notFinal: [], doubleCharges: [], mismatches: [], final: 450 });
    expect(report.byStatus.FAILED).toBe(6);
    const stats = await getJson<Stats>(`${s.simUrl}/__sim/stats`);
    expect(stats.status429).toBe(0);
    expect(stats.maxInWindow).toBeLessThanOrEqual(500);
    // Everything is on the new owners now, nothing left behind.
    const after = await expectEachFamilyOnItsOwner();
    expect(after).toMatchObject({ claims: claimsTo, queues: queuesTo, [`s${movedShard}`]: shardTo });
    expect(await keysOn(claimsTo, s.prefix)).toBeGreaterThan(450);
    expect((await paymentsPerPrimary()).reduce((a, b) => a + b, 0)).toBe(450);

    await expectOperatorViews(450);
  });

  it('is refused through REDIS_URL: a single-node client would not follow the slot', () => {
    const r = spawnSync('npx', ['tsx', 'apps/worker/src/main.ts'], {
      env: { ...process.env, REDIS_URL: cluster.nodes[0]!.url, REDIS_CLUSTER_NODES: '', PG_BASE_URL: s.simUrl, PG_SECRET_KEY: s.env.PG_SECRET_KEY, SLUICE_DEMO: '1' },
      encoding: 'utf8', timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toContain('REDIS_CLUSTER_NODES');
  });
});
