/**
 * The merchant's client (`packages/client`) against the real stack: the API, a worker and the
 * simulator as processes. A payment made, waited for and refunded through it; a retry after a
 * lost answer is the same request (one payment, one refund); a webhook verified with it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomUUID } from 'node:crypto';
import { SluiceApiError, SluiceClient, verifyWebhook, WebhookVerificationError } from '@sluice/client';
import { DEMO_KEY, startStack, type Stack } from './support/stack.ts';

let s: Stack;
beforeAll(async () => {
  s = await startStack({ sim: { SIM_LATENCY_MEDIAN_MS: '20', SIM_LATENCY_P99_MS: '100' } });
});
afterAll(async () => {
  await s?.stop();
});

/** A fetch whose first answer to a POST is lost after the server processed it (a dropped connection). */
function losingFirstAnswer(): { fetch: typeof fetch; posts: string[] } {
  const posts: string[] = [];
  let lost = false;
  const f: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (init?.method === 'POST') {
      posts.push(String(new Headers(init.headers).get('idempotency-key')));
      if (!lost) {
        lost = true;
        await res.text();
        throw new TypeError('fetch failed: the connection was reset');
      }
    }
    return res;
  };
  return { fetch: f, posts };
}

describe('the client against the stack', () => {
  it('makes a payment, waits for it, refunds part of it', async () => {
    const client = new SluiceClient({ baseUrl: s.apiUrl, apiKey: DEMO_KEY });
    const u = randomUUID().slice(0, 12);
    const p = await client.createPayment({ paymentKey: `pk_client_${u}`, orderId: `order-client-${u}`, amount: 10_000 });
    expect(p.status).toBe('QUEUED');
    const done = await client.waitForFinal(p.id, { timeoutMs: 30_000 });
    expect(done.status).toBe('APPROVED');
    const asked = await client.cancel(p.id, { reason: 'one item back', amount: 2_500 });
    expect(asked.cancels).toMatchObject([{ amount: 2_500, status: 'PENDING' }]);
    await expect.poll(async () => (await client.getPayment(p.id)).balanceAmount, { timeout: 20_000, interval: 200 }).toBe(7_500);
    await expect(client.cancel(p.id, { reason: 'too much', amount: 10_000 })).rejects.toMatchObject({ status: 422, code: 'CANCEL_AMOUNT_EXCEEDS_BALANCE' });
    await expect(client.getPayment('pay_0mwtg0rp12c8a1204a9db35e3')).rejects.toBeInstanceOf(SluiceApiError);
  });

  it('retries a lost answer with the same key: one payment, one refund', async () => {
    const lossy = losingFirstAnswer();
    const client = new SluiceClient({ baseUrl: s.apiUrl, apiKey: DEMO_KEY, fetch: lossy.fetch });
    const u = randomUUID().slice(0, 12);
    const p = await client.createPayment({ paymentKey: `pk_retry_${u}`, orderId: `order-retry-${u}`, amount: 4_000 });
    expect(lossy.posts).toHaveLength(2);
    expect(lossy.posts[0]).toBe(lossy.posts[1]);
    // One payment for the order: the retry was answered with the first one.
    expect(await s.redis.get(`${s.prefix}:oid:order-retry-${u}`)).toBe(p.id);
    await client.waitForFinal(p.id, { timeoutMs: 30_000 });
    const again = losingFirstAnswer();
    const c2 = new SluiceClient({ baseUrl: s.apiUrl, apiKey: DEMO_KEY, fetch: again.fetch });
    const asked = await c2.cancel(p.id, { reason: 'returned', amount: 1_000 });
    expect(again.posts[0]).toBe(again.posts[1]);
    expect(asked.cancels).toHaveLength(1);
    await expect.poll(async () => (await client.getPayment(p.id)).cancels.map((c) => c.status), { timeout: 20_000, interval: 200 }).toEqual(['SUCCEEDED']);
  });
});

describe('verifyWebhook', () => {
  const secret = `whsec_${Buffer.alloc(24, 3).toString('base64')}`;
  const sign = (id: string, ts: number, body: string) =>
    `v1,${createHmac('sha256', Buffer.from(secret.slice(6), 'base64')).update(`${id}.${ts}.${body}`).digest('base64')}`;

  it('returns the event of a delivery signed with the secret, and refuses a tampered, old, unsigned or foreign one', () => {
    const ts = Math.floor(Date.now() / 1_000);
    const body = JSON.stringify({ id: 'evt_1', type: 'payment.approved', timestamp: new Date().toISOString(), data: { paymentId: 'pay_x', seq: 3 } });
    const headers = { 'webhook-id': 'evt_1', 'webhook-timestamp': String(ts), 'webhook-signature': `v1,bm90IGl0 ${sign('evt_1', ts, body)}` };
    expect(verifyWebhook(headers, body, secret)).toMatchObject({ id: 'evt_1', type: 'payment.approved', data: { seq: 3 } });
    expect(verifyWebhook(new Headers(headers), Buffer.from(body), secret).id).toBe('evt_1');
    expect(() => verifyWebhook(headers, body.replace('pay_x', 'pay_y'), secret)).toThrow(WebhookVerificationError);
    expect(() => verifyWebhook({ ...headers, 'webhook-timestamp': String(ts - 600), 'webhook-signature': sign('evt_1', ts - 600, body) }, body, secret)).toThrow(/tolerance/);
    expect(() => verifyWebhook({ ...headers, 'webhook-signature': undefined }, body, secret)).toThrow(/missing/);
    expect(() => verifyWebhook(headers, body, `whsec_${Buffer.alloc(24, 4).toString('base64')}`)).toThrow(/no signature/);
    expect(() => verifyWebhook({ ...headers, 'webhook-id': 'evt_2', 'webhook-signature': sign('evt_2', ts, body) }, body, secret)).toThrow(/not the event/);
  });
});
