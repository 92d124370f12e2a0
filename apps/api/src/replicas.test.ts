/**
 * REDIS_WAIT_REPLICAS: a 202 only for a payment the replica holds. A real primary and replica
 * (redis-server processes on free ports): with the replica up every 202's payment is on it; with
 * it down intake answers 503 REPLICA_UNCONFIRMED, nothing is lost, and the merchant's retry with
 * the same key, once the replica is back, gets the same payment.
 */
import { startRedisServer, type RedisServer } from '@sluice/test-support';
import { plainPlace, ReplicaWaiter } from '@sluice/store';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentBody, post, postPayment, startTestApp, type TestApp } from './test-support.ts';

let primary: RedisServer;
let replica: RedisServer;
let t: TestApp;

async function inSync(): Promise<void> {
  const admin = replica.client();
  for (let i = 0; i < 300; i++) {
    if (/master_link_status:up/.test(await admin.info('replication').catch(() => ''))) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the replica did not sync');
}

beforeAll(async () => {
  primary = await startRedisServer();
  replica = await startRedisServer([['replicaof', '127.0.0.1', String(primary.port)]]);
  await inSync();
  t = await startTestApp({ REDIS_URL: primary.url, REDIS_WAIT_REPLICAS: 1, REDIS_WAIT_TIMEOUT_MS: 2_000 });
});
afterAll(async () => {
  await t?.close();
  await replica?.stop();
  await primary?.stop();
});

describe('intake with REDIS_WAIT_REPLICAS=1', () => {
  it('answers 202 only once the replica holds the payment, and 503 with Retry-After while it is away, losing nothing', async () => {
    const onReplica = replica.client();
    // Many at once: one WAIT serves a batch, and every 202's payment is on the replica.
    const answers = await Promise.all(Array.from({ length: 40 }, () => postPayment(t, { body: paymentBody() })));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));
    for (const a of answers) expect(await onReplica.exists(`${t.prefix}:pay:${a.json.id}`)).toBe(1);

    // The replica dies: the primary still takes the write, but no replica confirms it.
    await replica.kill9();
    const idem = randomUUID();
    const body = paymentBody();
    const refused = await postPayment(t, { idem, body });
    expect(refused.status).toBe(503);
    expect(refused.json.code).toBe('REPLICA_UNCONFIRMED');
    expect(refused.headers.get('retry-after')).toBe('1');

    // The merchant retries with the same key once the replica is back: the same payment, on it.
    await replica.restart();
    await inSync();
    const again = await postPayment(t, { idem, body });
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await replica.client().exists(`${t.prefix}:pay:${again.json.id}`)).toBe(1);
    // One payment for the order, not two.
    expect(await t.redis.get(`${t.prefix}:oid:${body.orderId as string}`)).toBe(again.json.id);
  });

  it('waits for the replica before a cancel request\'s 202 too', async () => {
    const created = await postPayment(t, { body: paymentBody() });
    expect(created.status).toBe(202);
    await replica.kill9();
    try {
      const refused = await post(t, `/v1/payments/${created.json.id}/cancel`, { reason: 'customer asked' });
      expect(refused.status).toBe(503);
      expect(refused.json.code).toBe('REPLICA_UNCONFIRMED');
    } finally {
      await replica.restart();
      await inSync();
    }
  });
});

describe('ReplicaWaiter', () => {
  it('does not confirm a write whose connection moved to another server before the WAIT answered', async () => {
    const writer = t.redis.duplicate();
    writer.on('error', () => undefined);
    const waiter = new ReplicaWaiter(plainPlace(writer), 1, 2_000);
    try {
      await writer.set(`${t.prefix}:probe`, '1');
      const mark = waiter.mark();
      await writer.set(`${t.prefix}:probe`, '2');
      expect(await waiter.confirm(mark)).toBe(true);
      // A reconnect between the mark and the answer: the write may have gone to another server.
      const moved = waiter.mark();
      writer.disconnect(true);
      await writer.set(`${t.prefix}:probe`, '3');
      expect(await waiter.confirm(moved)).toBe(false);
      expect(waiter.stats.waits).toBeGreaterThanOrEqual(2);
    } finally {
      await waiter.close();
      writer.disconnect();
    }
  });
});
