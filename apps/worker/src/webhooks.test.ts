/**
 * Signed webhooks end to end: payments made final by the worker against the simulator, an
 * endpoint on a local receiver (WEBHOOK_ALLOW_PRIVATE), signatures checked by an independent
 * implementation of the specification, a receiver that is down and comes back, 410 Gone, and a
 * dispatcher that died holding entries. Real Redis; the retry schedule scaled down.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { DELIVERY_JOB_OPTIONS } from '@sluice/queue';
import { BooksStream, connectRedis, makeKeys, newEndpointId, newPaymentId, PaymentStore, Transitions, WebhookEndpoints, WEBHOOKS_GROUP } from '@sluice/store';
import { DELIVERY_ATTEMPTS, newEndpointSecret, SecretBox } from '@sluice/webhooks';
import { startHarness, type Harness } from './test-harness.ts';
import { Webhooks } from './webhooks.ts';

/** Standard Webhooks' signature as the specification writes it, with WebCrypto. */
async function independentSignature(secret: string, id: string, ts: string, body: string): Promise<string> {
  const raw = Uint8Array.from(atob(secret.replace(/^whsec_/, '')), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${id}.${ts}.${body}`)));
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}

interface Received {
  id: string;
  ts: string;
  signature: string;
  body: string;
  at: number;
}

/** A receiver on a free local port: records every delivery, answers as `mode` says. */
class Receiver {
  mode: 'ok' | 'down' | 'gone' = 'ok';
  readonly got: Received[] = [];
  tries = 0;
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        this.tries++;
        if (this.mode === 'down') return void res.writeHead(503).end();
        if (this.mode === 'gone') return void res.writeHead(410).end();
        this.got.push({ id: String(req.headers['webhook-id']), ts: String(req.headers['webhook-timestamp']), signature: String(req.headers['webhook-signature']), body, at: Date.now() });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}/hook`;
  }

  ids(): Set<string> {
    return new Set(this.got.map((g) => g.id));
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

let h: Harness;
const receiver = new Receiver();
let secret = '';
let endpointId = '';
beforeAll(async () => {
  await receiver.start();
  h = await startHarness({}, { WEBHOOK_ALLOW_PRIVATE: true, WEBHOOK_RETRY_SCALE: 0.0002 });
  // Registered as the API does: the secret sealed for the endpoint, the dispatchers' group from now on.
  secret = newEndpointSecret();
  endpointId = newEndpointId();
  const box = new SecretBox(h.config.WEBHOOK_ENCRYPTION_KEY!);
  await new BooksStream(h.worker.redis, h.worker.store.keys, WEBHOOKS_GROUP).ensureGroup('$');
  await new WebhookEndpoints(h.worker.redis, h.config.REDIS_PREFIX).create({
    id: endpointId, merchantId: 'm1', url: receiver.url, events: ['payment.approved', 'payment.declined'], sealedSecret: box.seal(secret, endpointId), createdAt: Date.now(),
  });
});
afterAll(async () => {
  await h?.close();
  await receiver.close();
});

async function deliveredAll(n: number, timeoutMs: number): Promise<void> {
  await expect.poll(() => receiver.ids().size, { timeout: timeoutMs, interval: 50 }).toBeGreaterThanOrEqual(n);
}

describe('signed webhooks', () => {
  it('delivers each final state once, signed as the specification says, with the payment\'s sequence number', async () => {
    const ids = await Promise.all(Array.from({ length: 16 }, (_, i) => h.pay(i % 4 === 0 ? `sim_decline_wh${i}` : `pk_wh_${i}`)));
    const recs = await h.settle(ids);
    await deliveredAll(16, 15_000);
    for (const g of receiver.got) {
      expect(g.signature).toBe(await independentSignature(secret, g.id, g.ts, g.body));
      expect(Math.abs(Number(g.ts) - Date.now() / 1_000)).toBeLessThan(60);
      const ev = JSON.parse(g.body) as { id: string; type: string; data: { paymentId: string; status: string; seq: number } };
      expect(ev.id).toBe(g.id);
      const rec = recs.find((r) => r.id === ev.data.paymentId)!;
      expect(ev.type).toBe(rec.status === 'APPROVED' ? 'payment.approved' : 'payment.declined');
      expect(ev.data.seq).toBeGreaterThan(1);
    }
    expect(receiver.got.filter((g) => JSON.parse(g.body).type === 'payment.declined')).toHaveLength(4);
    expect(receiver.got).toHaveLength(16);
  });

  it('a receiver down for a while gets every event once it is back, none lost', async () => {
    receiver.mode = 'down';
    const before = receiver.ids().size;
    const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => h.pay(`pk_wh_down_${i}`)));
    await h.settle(ids);
    await expect.poll(() => receiver.tries, { timeout: 10_000 }).toBeGreaterThan(20);
    expect(receiver.ids().size).toBe(before);
    receiver.mode = 'ok';
    await deliveredAll(before + 10, 20_000);
    const paid = new Set(ids);
    expect(receiver.got.filter((g) => paid.has(JSON.parse(g.body).data.paymentId))).toHaveLength(10);
  });

  it('410 Gone disables the endpoint: nothing more goes to it', async () => {
    receiver.mode = 'gone';
    const [id] = await Promise.all([h.pay('pk_wh_gone_1')]);
    await h.settle([id!]);
    const endpoints = new WebhookEndpoints(h.worker.redis, h.config.REDIS_PREFIX);
    await expect.poll(async () => (await endpoints.get(endpointId))?.disabledAt ?? null, { timeout: 10_000 }).not.toBeNull();
    const tries = receiver.tries;
    receiver.mode = 'ok';
    const next = await h.pay('pk_wh_gone_2');
    await h.settle([next]);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(receiver.tries).toBe(tries);
    const counters = await h.worker.redis.hgetall(h.worker.store.keys.counters);
    expect([Number(counters['webhook:disabled']), Number(counters['webhook:delivered']) >= 26, Number(counters['webhook:failedTries']) > 0]).toEqual([1, true, true]);
    expect(DELIVERY_JOB_OPTIONS.attempts).toBe(DELIVERY_ATTEMPTS);
  });
});

describe('the address policy at delivery', () => {
  it('refuses to connect to a name that resolves to a private address, and delivers nothing there', async () => {
    const prefix = `test-${randomUUID()}`;
    const redis = connectRedis(h.config.REDIS_URL);
    const bull = connectRedis(h.config.REDIS_URL, { enableAutoPipelining: false });
    const keys = makeKeys(prefix);
    const box = new SecretBox(h.config.WEBHOOK_ENCRYPTION_KEY!);
    // Registered before the policy tightened (or through DNS that changed since): the name
    // `localhost` now resolves to loopback, which the deliverer's policy does not allow.
    const url = receiver.url.replace('127.0.0.1', 'localhost');
    await new WebhookEndpoints(redis, prefix).create({ id: 'we_private', merchantId: 'm1', url, events: ['payment.approved'], sealedSecret: box.seal(secret, 'we_private'), createdAt: Date.now() });
    const strict = new Webhooks({
      redis, reader: bull, bullConnection: bull, keys, box, policy: { allowHttp: true, allowPrivate: false }, concurrency: 1, timeoutMs: 1_000,
      retryScale: 0.0002, consumer: 'strict', log: pino({ level: 'silent' }),
    });
    const before = receiver.tries;
    try {
      await strict.queue.add('deliver', { eventId: 'evt_private_1', endpointId: 'we_private', body: '{"id":"evt_private_1"}', createdAt: Date.now() }, { ...DELIVERY_JOB_OPTIONS, jobId: 'evt_private_1.we_private' });
      await expect.poll(async () => Number(await redis.hget(keys.counters, 'webhook:failedTries')), { timeout: 5_000 }).toBeGreaterThan(0);
      const job = await strict.queue.getJob('evt_private_1.we_private');
      expect(job?.failedReason ?? '').toMatch(/not allowed/);
      expect(receiver.tries).toBe(before);
    } finally {
      await strict.close();
      const left = await redis.keys(`${prefix}:*`);
      if (left.length) await redis.unlink(...left);
      redis.disconnect();
      bull.disconnect();
    }
  });
});

describe('the outbox', () => {
  it('entries a dispatcher read and never acknowledged (it died) are taken over and delivered by another', async () => {
    const prefix = `test-${randomUUID()}`;
    const redis = connectRedis(h.config.REDIS_URL);
    const reader = connectRedis(h.config.REDIS_URL, { enableAutoPipelining: false });
    const bull = connectRedis(h.config.REDIS_URL, { enableAutoPipelining: false });
    const keys = makeKeys(prefix);
    const store = new PaymentStore(redis, { prefix, idempotencyTtlMs: 60_000, retentionMs: 60_000 });
    const t = new Transitions(redis, keys, { breaker: { consecutiveFailures: 99, failureRate: 1, minCalls: 999, windowMs: 10_000, openMs: 1_000, probeIntervalMs: 1_000, closeAfter: 1 }, maxQueueAgeMs: 60_000, retentionMs: 60_000 });
    const box = new SecretBox(h.config.WEBHOOK_ENCRYPTION_KEY!);
    const stream = new BooksStream(redis, keys, WEBHOOKS_GROUP);
    await stream.ensureGroup('$');
    await new WebhookEndpoints(redis, prefix).create({ id: 'we_takeover', merchantId: 'm1', url: receiver.url, events: ['payment.approved'], sealedSecret: box.seal(secret, 'we_takeover'), createdAt: Date.now() });
    const id = newPaymentId();
    await store.create({ id, merchantId: 'm1', provider: 'default', paymentKey: `pk_${id}`, orderId: `o-${id.slice(4, 20)}`, amount: 1_000, currency: 'KRW', metadata: null, requestId: null, createdAt: Date.now() }, 'i', 'f', '{}', 1_000);
    await t.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' });
    await t.apply({ paymentId: id, expected: 'confirming', step: { do: 'finalize', status: 'APPROVED' }, event: {}, settlesConfirm: true });
    // A dispatcher reads the entries, then dies before acknowledging them.
    expect((await stream.read(reader, 'dead', 100, false, 100)).length).toBeGreaterThan(0);
    const live = new Webhooks({
      redis, reader, bullConnection: bull, keys, box, policy: { allowHttp: true, allowPrivate: true }, concurrency: 2, timeoutMs: 2_000,
      retryScale: 0.0002, consumer: 'live', log: pino({ level: 'silent' }), claimIdleMs: 200,
    });
    try {
      expect(await live.dispatchOnce(50)).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      // Its own pending (none), then the dead one's, idle past 200 ms.
      await expect.poll(async () => (await live.dispatchOnce(50), live.dispatched), { timeout: 5_000 }).toBe(1);
      await expect.poll(() => receiver.got.some((g) => JSON.parse(g.body).data.paymentId === id), { timeout: 5_000 }).toBe(true);
    } finally {
      await live.close();
      const left = await redis.keys(`${prefix}:*`);
      if (left.length) await redis.unlink(...left);
      redis.disconnect();
      reader.disconnect();
      bull.disconnect();
    }
  });
});
