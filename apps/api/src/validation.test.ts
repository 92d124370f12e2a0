/**
 * Bad requests to POST /v1/payments: each is refused with the documented code in the
 * `{ code, message }` shape, and none of them writes anything to Redis.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from './payment-request.ts';
import { keysUnder, paymentBody, postPayment, startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
let initialKeys: string[];
beforeAll(async () => {
  t = await startTestApp();
  initialKeys = await keysUnder(t.redis, t.prefix);
});
afterAll(async () => {
  await t.close();
});

/** Everything the intake script writes that is not specific to one request. */
async function sharedState(): Promise<unknown> {
  const k = t.store.keys;
  return {
    open: await t.redis.zcard(k.open),
    fairRing: await t.redis.lrange(k.fair('default').ring, 0, -1),
    fairQueue: await t.redis.lrange(k.fair('default').queue('m_a'), 0, -1),
    counters: await t.redis.hgetall(k.counters),
  };
}

interface Case {
  name: string;
  idem?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  code: string;
}

const valid = paymentBody();
const pans = ['4111 1111 1111 1111', '4242-4242-4242-4242', '5555555555554444'];

const cases: Case[] = [
  { name: 'missing Idempotency-Key', idem: null, status: 400, code: 'INVALID_REQUEST' },
  { name: '256-character Idempotency-Key', idem: 'k'.repeat(256), status: 400, code: 'INVALID_REQUEST' },
  { name: 'Idempotency-Key with a tab', idem: 'abc\tdef', status: 400, code: 'INVALID_REQUEST' },
  { name: 'Idempotency-Key with a non-ASCII byte', idem: 'cl\u00e9', status: 400, code: 'INVALID_REQUEST' },
  { name: 'unknown field', body: { ...valid, customerEmail: 'a@b.c' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'amount 0', body: { ...valid, amount: 0 }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'amount -1', body: { ...valid, amount: -1 }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'amount 1.5', body: { ...valid, amount: 1.5 }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'amount "100"', body: { ...valid, amount: '100' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'amount past 2^53', body: { ...valid, amount: 2 ** 53 }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'amount missing', body: { paymentKey: 'pk_x', orderId: 'order-1' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'orderId too short', body: { ...valid, orderId: 'abc12' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'orderId too long', body: { ...valid, orderId: 'o'.repeat(65) }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'orderId with bad characters', body: { ...valid, orderId: 'order 1/2' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'empty paymentKey', body: { ...valid, paymentKey: '' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'paymentKey of 201 characters', body: { ...valid, paymentKey: 'p'.repeat(201) }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'wrong currency', body: { ...valid, currency: 'USD' }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'metadata with a number value', body: { ...valid, metadata: { n: 1 } }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'metadata with 21 keys', body: { ...valid, metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'metadata key of 41 characters', body: { ...valid, metadata: { ['k'.repeat(41)]: 'v' } }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'metadata value of 501 characters', body: { ...valid, metadata: { k: 'v'.repeat(501) } }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'metadata key __proto__', body: `{"paymentKey":"pk_proto","orderId":"order-proto","amount":1,"metadata":{"__proto__":"x"}}`, status: 400, code: 'INVALID_REQUEST' },
  { name: 'top-level __proto__', body: `{"paymentKey":"pk_proto","orderId":"order-proto","amount":1,"__proto__":{"x":"y"}}`, status: 400, code: 'INVALID_REQUEST' },
  { name: 'a JSON array', body: [valid], status: 400, code: 'INVALID_REQUEST' },
  { name: 'malformed JSON', body: '{"paymentKey": "pk_1", ', status: 400, code: 'INVALID_REQUEST' },
  { name: 'a bare JSON string', body: '"hello"', status: 400, code: 'INVALID_REQUEST' },
  { name: 'an empty JSON body', body: '', status: 400, code: 'INVALID_REQUEST' },
  { name: 'text/plain body', headers: { 'content-type': 'text/plain' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'form body', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'amount=1', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  // Intake bodies are a few hundred bytes: no encoding is taken, gzip included.
  { name: 'gzip encoding', headers: { 'content-encoding': 'gzip' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a charset other than UTF-8', headers: { 'content-type': 'application/json; charset=latin1' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  // Lengths as the PG counts them: UTF-16 code units. 101 emoji are 202 units (zod counts 101).
  { name: 'paymentKey of 101 emoji (202 UTF-16 units)', body: { ...valid, paymentKey: '\u{1F600}'.repeat(101) }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'metadata key of 21 emoji (42 units)', body: { ...valid, metadata: { ['\u{1F600}'.repeat(21)]: 'v' } }, status: 400, code: 'INVALID_REQUEST' },
  { name: 'metadata value of 251 emoji (502 units)', body: { ...valid, metadata: { k: '\u{1F600}'.repeat(251) } }, status: 400, code: 'INVALID_REQUEST' },
  // Escapes JSON allows that UTF-8 cannot carry: stored, they would turn into U+FFFD.
  { name: 'a lone high surrogate in paymentKey', body: `{"paymentKey":"pk_\\ud800","orderId":"order-lone-1","amount":1}`, status: 400, code: 'INVALID_REQUEST' },
  { name: 'a lone low surrogate in a metadata value', body: `{"paymentKey":"pk_lone_2","orderId":"order-lone-2","amount":1,"metadata":{"k":"\\udc00x"}}`, status: 400, code: 'INVALID_REQUEST' },
  { name: 'a lone surrogate in a metadata key', body: `{"paymentKey":"pk_lone_3","orderId":"order-lone-3","amount":1,"metadata":{"\\ud83d":"v"}}`, status: 400, code: 'INVALID_REQUEST' },
  { name: 'bytes that are not UTF-8', body: Buffer.from([...Buffer.from('{"paymentKey":"pk_'), 0xc3, 0x28, ...Buffer.from('","orderId":"order-utf8","amount":1}')]), status: 400, code: 'INVALID_REQUEST' },
  // A payment body must mean one thing: JSON.parse would keep the last amount.
  { name: 'amount given twice', body: `{"paymentKey":"pk_dup_1","orderId":"order-dup-1","amount":1,"amount":999999}`, status: 400, code: 'INVALID_REQUEST' },
  { name: 'a key given twice, once escaped', body: `{"paymentKey":"pk_dup_2","orderId":"order-dup-2","amount":1,"\\u0061mount":2}`, status: 400, code: 'INVALID_REQUEST' },
  { name: 'a metadata key given twice', body: `{"paymentKey":"pk_dup_3","orderId":"order-dup-3","amount":1,"metadata":{"a":"1","a":"2"}}`, status: 400, code: 'INVALID_REQUEST' },
  { name: 'an unknown content encoding', headers: { 'content-encoding': 'bogus' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'oversized body', body: { ...valid, metadata: { k: 'x'.repeat(20_000) } }, status: 413, code: 'PAYLOAD_TOO_LARGE' },
  ...pans.map((pan) => ({ name: `metadata value holding ${pan}`, body: { ...valid, metadata: { note: `card ${pan}` } }, status: 400, code: 'CARD_DATA_NOT_ALLOWED' })),
  { name: 'metadata key holding a PAN', body: { ...valid, metadata: { '4111111111111111': 'x' } }, status: 400, code: 'CARD_DATA_NOT_ALLOWED' },
];

describe('POST /v1/payments refuses bad input', () => {
  it.each(cases)('$name → $status $code', async (c) => {
    const before = await sharedState();
    const idem = c.idem === undefined ? randomUUID() : c.idem;
    const res = await postPayment(t, {
      idem,
      ...(c.body !== undefined ? { body: c.body } : {}),
      ...(c.headers ? { headers: c.headers } : {}),
    });
    expect(res.status).toBe(c.status);
    expect(res.json).toMatchObject({ code: c.code, message: expect.any(String) });
    expect(Object.keys(res.json).every((k) => ['code', 'message', 'details'].includes(k))).toBe(true);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    // Nothing written: no shared state moved, and neither this request's idempotency key nor
    // its claims exist (the file's last test also compares the whole key space).
    expect(await sharedState()).toEqual(before);
    if (idem) expect(await t.redis.exists(t.store.keys.idempotency('m_a', sha256Hex(idem)))).toBe(0);
    const b = c.body as { paymentKey?: unknown; orderId?: unknown } | undefined;
    if (b && typeof b === 'object' && typeof b.paymentKey === 'string') {
      expect(await t.redis.exists(t.store.keys.byPaymentKey(b.paymentKey))).toBe(0);
    }
    if (b && typeof b === 'object' && typeof b.orderId === 'string') {
      expect(await t.redis.exists(t.store.keys.byOrderId(b.orderId))).toBe(0);
    }
  });

  it('lists the zod issues in details without echoing values', async () => {
    const res = await postPayment(t, { body: { ...valid, amount: 1.5, orderId: 'x', secretThing: 'hunter2-value' } });
    expect(res.status).toBe(400);
    const paths = (res.json.details as { path: string }[]).map((d) => d.path).sort();
    expect(paths).toEqual(['', 'amount', 'orderId']);
    expect(res.text).not.toContain('hunter2-value');
  });

  it('never echoes the card number it refuses', async () => {
    const res = await postPayment(t, { body: { ...valid, metadata: { note: '4111 1111 1111 1111' } } });
    expect(res.status).toBe(400);
    expect(res.text).not.toMatch(/4111/);
  });

  it('accepts a Luhn-valid 16-digit orderId: only metadata is checked for PANs', async () => {
    const res = await postPayment(t, { body: paymentBody({ orderId: '4111111111111111', metadata: { note: 'order 12345' } }) });
    expect(res.status).toBe(202);
    expect(res.json.orderId).toBe('4111111111111111');
  });

  it('accepts the boundaries: 255-character key, 200-character paymentKey, 64-character orderId, 20 metadata keys', async () => {
    const res = await postPayment(t, {
      idem: '~'.repeat(255),
      body: paymentBody({
        paymentKey: `p${'k'.repeat(199)}`.slice(0, 199) + Math.random().toString(36).slice(2, 3),
        orderId: `o${Date.now()}`.padEnd(64, '0'),
        amount: Number.MAX_SAFE_INTEGER,
        metadata: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`.padEnd(40, 'x'), 'v'.repeat(500)])),
      }),
    });
    expect(res.status).toBe(202);
    expect(res.json.amount).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('wrote nothing for any refused request: only the accepted payments are in Redis', async () => {
    const created = await t.redis.zrange(t.store.keys.open, 0, -1);
    expect(created).toHaveLength(2);
    const now = await keysUnder(t.redis, t.prefix);
    const added = now.filter((k) => !initialKeys.includes(k) && !k.startsWith(`${t.prefix}:confirm:`));
    const perPayment = await Promise.all(
      created.map(async (id) => {
        const r = await t.store.get(id);
        return [t.store.keys.payment(id), t.store.keys.byPaymentKey(r!.paymentKey), t.store.keys.byOrderId(r!.orderId)];
      }),
    );
    // Keys the intake script shares between payments (backlog, counters, rates, the merchant's
    // fair queue) may appear; every other new key must belong to one of the two accepted payments.
    const fair = t.store.keys.fair('default');
    const shared = new Set([
      ...Object.values(t.store.keys).filter((v): v is string => typeof v === 'string'),
      fair.ring, fair.meta, fair.queue('m_a'), fair.merchant('m_a'),
    ]);
    const idemKeys = added.filter((k) => k.startsWith(`${t.prefix}:idem:`));
    expect(idemKeys).toHaveLength(2);
    const own = added.filter((k) => !k.startsWith(`${t.prefix}:idem:`) && !shared.has(k));
    expect(own.sort()).toEqual(perPayment.flat().sort());
  });
});
