/**
 * The webhook routes over HTTP: endpoints registered (the secret shown once, sealed at rest),
 * listed and deleted per merchant; URLs the policy refuses; the events listed in order from the
 * books, and one redelivered. Answers checked against the documented schemas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '@sluice/books/testing';
import { createWebhookQueue } from '@sluice/queue';
import { Transitions } from '@sluice/store';
import { pino } from 'pino';
import { createApp } from './app.ts';
import { endpointListSchema, endpointResourceSchema, errorBodySchema, eventPageSchema } from './api-schemas.ts';
import { drainToBooks, get, listen, paymentBody, post, postPayment, startTestApp, type TestApp } from './test-support.ts';

const db = useTestDatabase();
let t: TestApp;
let transitions: Transitions;
beforeAll(async () => {
  t = await startTestApp({}, { databaseUrl: db.url });
  const breaker = { consecutiveFailures: 1_000, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 };
  transitions = new Transitions(t.redis, t.store.keys, { breaker, maxQueueAgeMs: 3_600_000, retentionMs: 600_000 });
});
afterAll(async () => {
  await t.close();
});

const del = (path: string, key: string) => fetch(`${t.url}${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });
const code = (a: { json: unknown }) => errorBodySchema().parse(a.json).code;

describe('webhook endpoints', () => {
  it('registers one with its secret shown once, lists it without, and deletes it; another merchant sees none of it', async () => {
    const made = await post(t, '/v1/webhook-endpoints', { url: 'https://merchant.example/hooks', events: ['payment.approved', 'refund.failed'] });
    expect(made.status).toBe(201);
    const e = endpointResourceSchema.parse(made.json);
    expect(e.secret).toMatch(/^whsec_/);
    // Sealed at rest: Redis does not hold the secret.
    const stored = await t.redis.hgetall(`${t.prefix}:wh:ep:${e.id}`);
    expect(JSON.stringify(stored)).not.toContain(e.secret!.slice(6));
    const list = await get(t, '/v1/webhook-endpoints', t.keyA);
    expect(endpointListSchema.parse(list.json).data).toEqual([{ id: e.id, url: 'https://merchant.example/hooks', events: ['payment.approved', 'refund.failed'], createdAt: e.createdAt, disabledAt: null }]);
    expect((await get(t, '/v1/webhook-endpoints', t.keyB)).json).toEqual({ data: [] });
    expect((await del(`/v1/webhook-endpoints/${e.id}`, t.keyB)).status).toBe(404);
    expect((await del(`/v1/webhook-endpoints/${e.id}`, t.keyA)).status).toBe(204);
    expect((await del(`/v1/webhook-endpoints/${e.id}`, t.keyA)).status).toBe(404);
    expect((await get(t, '/v1/webhook-endpoints', t.keyA)).json).toEqual({ data: [] });
  });

  it('refuses a URL the policy does not allow, an unknown event type, and a 21st endpoint', async () => {
    for (const url of ['https://127.0.0.1/hook', 'https://169.254.169.254/latest/meta-data', 'https://localhost/x', 'https://u:p@merchant.example/', 'ftp://merchant.example/', 'nope']) {
      const res = await post(t, '/v1/webhook-endpoints', { url });
      expect([res.status, code(res)], url).toEqual([400, 'INVALID_REQUEST']);
    }
    const bad = await post(t, '/v1/webhook-endpoints', { url: 'https://merchant.example/', events: ['payment.exploded'] });
    expect(bad.status).toBe(400);
    for (let i = 0; i < 20; i++) expect((await post(t, '/v1/webhook-endpoints', { url: `https://merchant.example/${i}` }, t.keyB)).status).toBe(201);
    const over = await post(t, '/v1/webhook-endpoints', { url: 'https://merchant.example/21' }, t.keyB);
    expect([over.status, code(over)]).toEqual([409, 'ENDPOINT_LIMIT_REACHED']);
  });

  it('answers 503 WEBHOOKS_UNAVAILABLE without an encryption key, and refuses plain http in production', async () => {
    for (const [over, want] of [[{ WEBHOOK_ENCRYPTION_KEY: undefined }, 503], [{ NODE_ENV: 'production' }, 400]] as const) {
      const app = createApp({ config: { ...t.config, ...over }, store: t.store, queues: t.queues, logger: pino({ level: 'silent' }) });
      const server = await listen(app, t.config);
      try {
        const res = await fetch(`${server.url}/v1/webhook-endpoints`, {
          method: 'POST', headers: { authorization: `Bearer ${t.keyA}`, 'content-type': 'application/json' }, body: JSON.stringify({ url: 'http://merchant.example/hook' }),
        });
        expect(res.status).toBe(want);
      } finally {
        await server.close();
      }
    }
  });
});

describe('events', () => {
  it('lists a merchant\'s events in order from the books, a page at a time, and redelivers one', async () => {
    const made = await post(t, '/v1/webhook-endpoints', { url: 'https://merchant.example/events', events: ['payment.approved', 'payment.declined'] });
    const ids: string[] = [];
    for (const status of ['APPROVED', 'DECLINED', 'APPROVED'] as const) {
      const res = await postPayment(t, { body: paymentBody() });
      const id = res.json.id as string;
      await transitions.guard({ paymentId: id, call: 'confirm', allowed: ['queued', 'confirming'], to: 'confirming' });
      await transitions.apply({ paymentId: id, expected: 'confirming', step: { do: 'finalize', status }, event: {}, settlesConfirm: true });
      ids.push(id);
    }
    await drainToBooks(t, db.url, 600_000);
    const first = await get(t, '/v1/events?limit=2', t.keyA);
    const page = eventPageSchema.parse(first.json);
    expect(page.data.map((e) => [e.type, e.data.paymentId])).toEqual([['payment.approved', ids[0]], ['payment.declined', ids[1]]]);
    expect(page.hasMore).toBe(true);
    const second = eventPageSchema.parse((await get(t, `/v1/events?after=${page.nextAfter}`, t.keyA)).json);
    expect(second.data.map((e) => e.data.paymentId)).toEqual([ids[2]]);
    expect(second.hasMore).toBe(false);
    // Another merchant has none of them; an unknown `after` is a 400.
    expect(eventPageSchema.parse((await get(t, '/v1/events', t.keyB)).json).data).toEqual([]);
    expect((await get(t, `/v1/events?after=${page.nextAfter}`, t.keyB)).status).toBe(400);

    const again = await post(t, `/v1/events/${page.data[1]!.id}/redeliver`, {});
    expect(again.status).toBe(202);
    expect(again.json).toEqual({ id: page.data[1]!.id, endpoints: [made.json.id] });
    const queue = createWebhookQueue(t.redis, t.prefix);
    const jobs = await queue.getJobs(['waiting', 'wait', 'delayed', 'prioritized']);
    expect(jobs.map((j) => [j.data.eventId, j.data.endpointId])).toContainEqual([page.data[1]!.id, made.json.id]);
    expect((await post(t, `/v1/events/${page.data[1]!.id}/redeliver`, {}, t.keyB)).status).toBe(404);
  });
});
