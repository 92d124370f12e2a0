/**
 * Property tests over the intake: 10,000 malformed, oversized or wrongly typed bodies and
 * headers against the real app (real Redis, its own prefix), sent over a keep-alive undici Pool.
 * Whatever comes in, the answer is never a 5xx, and every error body is the documented
 * `{ code, message, details? }` with a code documented for that status.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiOperations, type OperationSpec } from './api-spec.ts';
import { startTestApp, type TestApp } from './test-support.ts';

let t: TestApp;
let pool: Pool;
let post: OperationSpec;
beforeAll(async () => {
  t = await startTestApp();
  pool = new Pool(t.url, { connections: 16, pipelining: 1, keepAliveTimeout: 30_000 });
  post = apiOperations(t.config).find((o) => o.operationId === 'createPayment')!;
});
afterAll(async () => {
  await pool.close();
  await t.close();
});

/** Fixed seed per run of the suite is not wanted (new inputs each time), but it is printed on failure. */
const RUNS = { jsonValues: 2_000, wrongTypes: 2_000, hugeStrings: 600, idempotencyKeys: 1_400, contentTypes: 1_000, bytes: 1_000, nesting: 500, pollution: 1_000, authorization: 500 };

interface Req {
  body: string | Uint8Array;
  headers?: Record<string, string | string[]>;
  /** Replaces the default headers entirely (for duplicate header lines). */
  rawHeaders?: string[];
}

const statuses = new Map<number, number>();

/** POSTs and checks the answer against the documented responses. */
async function check(r: Req): Promise<void> {
  const headers = r.rawHeaders ?? {
    authorization: `Bearer ${t.keyA}`,
    'content-type': 'application/json',
    'idempotency-key': randomUUID(),
    ...r.headers,
  };
  const res = await pool.request({ method: 'POST', path: '/v1/payments', headers, body: r.body });
  const text = await res.body.text();
  statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
  expect(res.statusCode, text).toBeLessThan(500);
  const documented = post.responses[res.statusCode];
  expect(documented, `undocumented ${res.statusCode}: ${text}`).toBeDefined();
  const parsed = documented!.schema!.safeParse(JSON.parse(text));
  expect(parsed.success, `${res.statusCode} ${text}: ${parsed.error?.message}`).toBe(true);
}

const valid = () => {
  const u = randomUUID().replaceAll('-', '');
  return { paymentKey: `pk_${u}`, orderId: `ord_${u.slice(0, 20)}`, amount: 1_000 };
};

/** Any JSON type, for putting in the wrong place. */
const anyJson = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
);

const prop = <T>(arb: fc.Arbitrary<T>, toReq: (v: T) => Req, numRuns: number) =>
  fc.assert(fc.asyncProperty(arb, (v) => check(toReq(v))), { numRuns, endOnFailure: true });

describe('POST /v1/payments under fuzzing', () => {
  it('answers 10,000 malformed requests without a 5xx, every error in the documented shape', async () => {
    // The properties run side by side: each is one request at a time, the pool serves them all.
    await Promise.all([
      // Arbitrary JSON values as the whole body.
      prop(fc.jsonValue(), (v) => ({ body: JSON.stringify(v) ?? 'null' }), RUNS.jsonValues),
      // Each field absent, or of a wrong type; sometimes the right one.
      prop(
        fc.record(
          { paymentKey: fc.oneof(anyJson, fc.constant('pk_ok')), orderId: fc.oneof(anyJson, fc.constant('order-ok-1')), amount: fc.oneof(anyJson, fc.constant(100)), currency: anyJson, metadata: anyJson },
          { requiredKeys: [] },
        ),
        (v) => ({ body: JSON.stringify({ ...v, ...(v.paymentKey === 'pk_ok' ? { paymentKey: `pk_${randomUUID()}` } : {}) }) }),
        RUNS.wrongTypes,
      ),
      // Huge strings in each field, across and under the body limit.
      prop(
        fc.tuple(fc.constantFrom('paymentKey', 'orderId', 'metadata', 'unknownField', 'metadataKey'), fc.nat({ max: 40_000 }), fc.constantFrom('x', 'é', '4', '\u{1F600}', '"', '\\')),
        ([field, n, ch]) => {
          const s = ch.repeat(n);
          const b: Record<string, unknown> = valid();
          if (field === 'metadata') b.metadata = { k: s };
          else if (field === 'metadataKey') b.metadata = { [s]: 'v' };
          else b[field] = s;
          return { body: JSON.stringify(b) };
        },
        RUNS.hugeStrings,
      ),
      // Odd Idempotency-Keys: any character the client lets into a header (tab and printable ASCII;
      // undici refuses bytes past 0x7F, which validation.test.ts sends through fetch), empty,
      // long, repeated.
      prop(
        fc.oneof(
          fc.string({ unit: fc.mapToConstant({ num: 1, build: () => '\t' }, { num: 0x7e - 0x20 + 1, build: (i) => String.fromCharCode(0x20 + i) }), maxLength: 300 }),
          fc.array(fc.string({ maxLength: 20 }), { minLength: 2, maxLength: 3 }),
        ),
        (idem) => ({ body: JSON.stringify(valid()), headers: { 'idempotency-key': idem } }),
        RUNS.idempotencyKeys,
      ),
      // Content types: wrong, odd charsets, parameters, and duplicate header lines.
      prop(
        fc.tuple(
          fc.oneof(
            fc.constantFrom('text/plain', 'application/JSON', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'application/json;charset="UTF-8"',
              'application/jsonx', 'application/json;', '', ' ', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application/*', '*/*',
              'application/json, text/plain', 'application/merge-patch+json', 'application/json; charset=nope'),
            fc.string({ maxLength: 40 }).map((s) => `application/json; ${s}`),
          ),
          fc.boolean(),
          fc.constantFrom('identity', 'gzip', 'deflate', 'br', 'bogus', ''),
        ),
        ([ct, twice, encoding]) => ({
          body: JSON.stringify(valid()),
          rawHeaders: [
            'authorization', `Bearer ${t.keyA}`, 'idempotency-key', randomUUID(), 'content-type', ct,
            ...(twice ? ['content-type', 'application/json'] : []), ...(encoding ? ['content-encoding', encoding] : []),
          ],
        }),
        RUNS.contentTypes,
      ),
      // Bytes that are not UTF-8 (or not JSON), alone or inside a JSON string.
      prop(
        fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.boolean()),
        ([bytes, wrapped]) => ({
          body: wrapped
            ? Buffer.concat([Buffer.from('{"paymentKey":"'), Buffer.from(bytes.filter((b) => b !== 0x22 && b !== 0x5c)), Buffer.from('","orderId":"order-bytes","amount":1}')])
            : bytes,
        }),
        RUNS.bytes,
      ),
      // Deep nesting, as the body and inside fields.
      prop(
        fc.tuple(fc.integer({ min: 1, max: 8_000 }), fc.constantFrom('body', 'metadata', 'unknown', 'amount'), fc.constantFrom('[', '{"a":')),
        ([depth, where, open]) => {
          const close = open === '[' ? ']' : '}';
          const deep = `${open.repeat(depth)}1${close.repeat(depth)}`;
          if (where === 'body') return { body: deep };
          const b = JSON.stringify(valid()).slice(0, -1);
          return { body: `${b},"${where}":${deep}}` };
        },
        RUNS.nesting,
      ),
      // Prototype-pollution keys and unknown fields, at the top and in metadata.
      prop(
        fc.tuple(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', 'unknown'), fc.constantFrom('top', 'metadata'), anyJson),
        ([key, where, value]) => {
          const b = JSON.stringify(valid()).slice(0, -1);
          const v = JSON.stringify(where === 'metadata' ? { [key]: value } : value) ?? 'null';
          const inner = where === 'metadata' ? `{"${key}":${JSON.stringify(value) ?? 'null'}}` : v;
          return { body: `${b},"${where === 'top' ? key : 'metadata'}":${inner}}` };
        },
        RUNS.pollution,
      ),
      // Authorization headers that are not a merchant key.
      prop(
        fc.oneof(fc.string({ maxLength: 600 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')), fc.constant(`Bearer ${t.keyA.toUpperCase()}`), fc.constant(`Basic ${t.keyA}`), fc.constant('Bearer')),
        (auth) => ({ body: JSON.stringify(valid()), headers: { authorization: auth } }),
        RUNS.authorization,
      ),
    ]);

    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(10_000);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    // The fuzzing reached every kind of refusal, not just one.
    for (const s of [400, 401, 413, 415]) expect(statuses.get(s) ?? 0, `no ${s} among ${JSON.stringify([...statuses])}`).toBeGreaterThan(0);
    // Nothing of it polluted Object.prototype in this process (the app runs in it).
    expect(({} as Record<string, unknown>).a).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
  }, 120_000);
});
