/**
 * Card data and secrets never land anywhere: card numbers in metadata are refused, and after a
 * run of normal payments, refused attempts, reads, a long poll and a failed request (with the
 * real logger at trace level writing to a buffer), neither Redis (every key under the test's
 * prefix, read by type and dumped) nor the log holds a test PAN, a merchant API key, the pepper,
 * the operator password or the PG secret key.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from '@sluice/store';
import { createLogger } from '@sluice/log';
import { get, keysUnder, paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

const PANS = ['4111 1111 1111 1111', '4242-4242-4242-4242', '5555555555554444', '378282246310005', '6011111111111117'];
/** How a PAN could show up: as sent, or as bare digits. */
const panForms = (pan: string): string[] => [pan, pan.replace(/\D/g, '')];

let t: TestApp;
const lines: string[] = [];
beforeAll(async () => {
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  t = await startTestApp({}, { logger: createLogger({ LOG_LEVEL: 'trace' }, { name: 'sluice-api', destination: stream }) });
});
afterAll(async () => {
  await t.close();
});

/** Every value under the prefix, read by its type, plus each key's DUMP, as one text. */
async function everythingUnder(redis: Redis, prefix: string): Promise<string> {
  const parts: string[] = [];
  for (const key of await keysUnder(redis, prefix)) {
    parts.push(key);
    const type = await redis.type(key);
    if (type === 'string') parts.push((await redis.get(key)) ?? '');
    else if (type === 'hash') parts.push(JSON.stringify(await redis.hgetall(key)));
    else if (type === 'list') parts.push(JSON.stringify(await redis.lrange(key, 0, -1)));
    else if (type === 'set') parts.push(JSON.stringify(await redis.smembers(key)));
    else if (type === 'zset') parts.push(JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES')));
    else if (type === 'stream') parts.push(JSON.stringify(await redis.xrange(key, '-', '+')));
    else throw new Error(`unexpected type ${type} of ${key}`);
    const dump = await redis.dumpBuffer(key);
    if (dump) parts.push(dump.toString('latin1'));
  }
  return parts.join('\n');
}

describe('card data', () => {
  it.each(PANS)('a metadata value holding %s is 400 CARD_DATA_NOT_ALLOWED, without echoing it', async (pan) => {
    for (const value of [pan, `card ${pan} exp 12/30`]) {
      const res = await postPayment(t, { body: paymentBody({ metadata: { note: value } }) });
      expect(res.status).toBe(400);
      expect(res.json).toEqual({ code: 'CARD_DATA_NOT_ALLOWED', message: expect.any(String), details: { field: 'metadata' } });
      for (const form of panForms(pan)) expect(res.text).not.toContain(form);
    }
  });

  it('after normal traffic and refused attempts, no PAN or secret is in Redis or in the log', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await postPayment(t, { key: i % 2 ? t.keyA : t.keyB, body: paymentBody({ metadata: { cart: `c-${i}`, note: 'thank you' } }) });
      expect(res.status).toBe(202);
      ids.push(res.json.id);
    }
    for (const pan of PANS) {
      // In metadata, as an unknown field, and as the API key: all refused, none stored or logged.
      // (orderId is not checked by design: a merchant's 16-digit order number may be Luhn-valid.)
      expect((await postPayment(t, { body: paymentBody({ metadata: { card: pan } }) })).status).toBe(400);
      expect((await postPayment(t, { body: { ...paymentBody(), cardNumber: pan } })).status).toBe(400);
      expect((await postPayment(t, { key: pan, body: paymentBody() })).status).toBe(401);
    }
    await get(t, `/v1/payments/${ids[1]}`, t.keyA);
    await get(t, `/v1/payments/${ids[0]}?wait=1`, t.keyB);
    await get(t, `/v1/payments/${ids[0]}`, t.keyA); // BOLA 404
    await get(t, '/metrics', undefined, { authorization: `Basic ${Buffer.from(`ops:${t.config.ADMIN_PASSWORD}`).toString('base64')}` });
    // A failure the error handler logs (5xx are logged, with the request id).
    const original = t.store.create.bind(t.store);
    t.store.create = () => Promise.reject(Object.assign(new Error('ERR boom'), { command: { name: 'evalsha', args: [t.keyA, PANS[0]] } }));
    try {
      expect((await postPayment(t, { body: paymentBody({ metadata: { n: '1' } }) })).status).toBe(500);
    } finally {
      t.store.create = original;
    }

    const stored = await everythingUnder(t.redis, t.prefix);
    const log = lines.join('');
    // The search finds what is there: the payments and the 500 are present.
    expect(stored).toContain(ids[0]);
    expect(stored).toContain('thank you');
    expect(log).toContain('request failed');

    const secrets = [t.keyA, t.keyB, t.config.API_KEY_PEPPER!, t.config.PG_SECRET_KEY!, t.config.ADMIN_PASSWORD!];
    for (const s of secrets) {
      expect(stored.includes(s), `a secret is in Redis`).toBe(false);
      expect(log.includes(s), `a secret is in the log`).toBe(false);
    }
    for (const pan of PANS) {
      for (const form of panForms(pan)) {
        expect(stored.includes(form), `${form} is in Redis`).toBe(false);
        expect(log.includes(form), `${form} is in the log`).toBe(false);
      }
    }
  });
});
