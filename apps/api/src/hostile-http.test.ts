/**
 * What fetch cannot send: requests written byte for byte to the API's socket. Each found by a
 * probe of the running gateway, each answered at once with a JSON error and a code, and none of
 * them writes anything to Redis.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keysUnder, paymentBody, postPayment, rawExchange, startTestApp, type RawAnswer, type TestApp } from './test-support.ts';

/** Short, so that the test of it is short; the check interval is a fraction of it. */
const REQUEST_TIMEOUT_MS = 1_500;

let t: TestApp;
let keysBefore: string[];
beforeAll(async () => {
  t = await startTestApp({ REQUEST_TIMEOUT_MS });
  keysBefore = await keysUnder(t.redis, t.prefix);
});
afterAll(async () => {
  // Nothing in this file was accepted: the key space is as it was.
  expect(await keysUnder(t.redis, t.prefix)).toEqual(keysBefore);
  await t.close();
});

const auth = () => `Authorization: Bearer ${t.keyA}\r\n`;

/** A POST /v1/payments head with the given extra header lines. */
function postHead(extra: string, length: number | 'chunked'): string {
  const framing = length === 'chunked' ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${length}\r\n`;
  return `POST /v1/payments HTTP/1.1\r\nHost: t\r\n${auth()}Content-Type: application/json\r\n${extra}${framing}\r\n`;
}

function expectError(a: RawAnswer | undefined, status: number, code: string): void {
  expect(a, 'an answer').toBeDefined();
  expect(a!.status, a!.text).toBe(status);
  expect(a!.headers['content-type']).toMatch(/^application\/json/);
  expect(JSON.parse(a!.text)).toMatchObject({ code, message: expect.any(String) });
}

describe('paths and methods', () => {
  it('a broken percent-escape in the path is a 400, not a 500', async () => {
    for (const path of ['/v1/payments/%E0%A4%A', '/v1/payments/%', '/v1/payments/%zz']) {
      const x = await rawExchange(t.url, [`GET ${path} HTTP/1.1\r\nHost: t\r\n${auth()}Connection: close\r\n\r\n`]);
      expectError(x.answers[0], 400, 'INVALID_REQUEST');
    }
  });

  it('a method the path does not serve is a 405 with Allow; OPTIONS is a 204 with Allow', async () => {
    const cases: [string, string, string][] = [
      ['DELETE', '/v1/payments/pay_1', 'GET, HEAD'],
      ['PUT', '/v1/payments', 'GET, HEAD, POST'],
      ['PATCH', '/v1/payments/pay_1', 'GET, HEAD'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', '/openapi.json', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const res = await fetch(`${t.url}${path}`, { method, headers: { authorization: `Bearer ${t.keyA}` } });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      expect(await res.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED' });
      const options = await fetch(`${t.url}${path}`, { method: 'OPTIONS', headers: { authorization: `Bearer ${t.keyA}` } });
      expect(options.status).toBe(204);
      expect(options.headers.get('allow')).toBe(allow);
    }
    // A path that is not served at all is still a 404, whatever the method.
    const res = await fetch(`${t.url}/v1/refunds`, { method: 'DELETE', headers: { authorization: `Bearer ${t.keyA}` } });
    expect(res.status).toBe(404);
    expect(res.headers.get('allow')).toBeNull();
  });
});

describe('headers', () => {
  it('two Idempotency-Key headers are a 400 (Node would join them into one key)', async () => {
    const body = JSON.stringify(paymentBody());
    const x = await rawExchange(t.url, [postHead(`Idempotency-Key: k-${randomUUID()}\r\nIdempotency-Key: k-${randomUUID()}\r\nConnection: close\r\n`, Buffer.byteLength(body)) + body]);
    expectError(x.answers[0], 400, 'INVALID_REQUEST');
    expect(JSON.parse(x.answers[0]!.text).details[0].path).toBe('headers.idempotency-key');
  });

  it('two Authorization or Content-Type headers are a 400 (Node keeps the first)', async () => {
    const body = JSON.stringify(paymentBody());
    for (const extra of [auth(), 'Content-Type: text/plain\r\n']) {
      const x = await rawExchange(t.url, [postHead(`${extra}Idempotency-Key: k-${randomUUID()}\r\nConnection: close\r\n`, Buffer.byteLength(body)) + body]);
      expectError(x.answers[0], 400, 'INVALID_REQUEST');
    }
  });

  it('headers past Node’s 16 KB are a 431 with a JSON body', async () => {
    const x = await rawExchange(t.url, [`GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`]);
    expectError(x.answers[0], 431, 'HEADERS_TOO_LARGE');
    expect(x.closed).toBe(true);
  });

  it('HTTP that Node’s parser refuses is a 400 with a JSON body, and the connection closes', async () => {
    for (const bad of ['GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n', 'GARBAGE\r\n\r\n', 'GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', postHead(`Idempotency-Key: k-${randomUUID()}\r\n`, 'chunked') + 'zz\r\n']) {
      const x = await rawExchange(t.url, [bad]);
      expectError(x.answers[0], 400, 'INVALID_REQUEST');
      expect(x.closed).toBe(true);
    }
  });
});

describe('bodies that lie about their size or never end', () => {
  it('Content-Length: 99999999 with a short body is a 413 at once, from the header alone', async () => {
    const x = await rawExchange(t.url, [postHead(`Idempotency-Key: k-${randomUUID()}\r\n`, 99_999_999) + '{"a":1}'], { timeoutMs: REQUEST_TIMEOUT_MS });
    expectError(x.answers[0], 413, 'PAYLOAD_TOO_LARGE');
    // Answered and closed well before the request timeout would have cut it.
    expect(x.closed).toBe(true);
    expect(x.ms).toBeLessThan(REQUEST_TIMEOUT_MS / 2);
  });

  it('a chunked body that grows past the limit is cut off with a 413 while it is still coming', async () => {
    const chunk = `2000\r\n${'x'.repeat(0x2000)}\r\n`;
    // Three 8 KiB chunks pass the 16 KiB limit; the fourth is never needed.
    const x = await rawExchange(t.url, [postHead(`Idempotency-Key: k-${randomUUID()}\r\n`, 'chunked'), chunk, chunk, chunk], {
      gapMs: 50,
      timeoutMs: REQUEST_TIMEOUT_MS,
    });
    expectError(x.answers[0], 413, 'PAYLOAD_TOO_LARGE');
    expect(x.closed).toBe(true);
  });

  it('a body that stops arriving is answered 408 within the request timeout, and closed', async () => {
    const x = await rawExchange(t.url, [postHead(`Idempotency-Key: k-${randomUUID()}\r\n`, 100) + '{"paymentKey":'], { timeoutMs: REQUEST_TIMEOUT_MS * 3 });
    expectError(x.answers[0], 408, 'REQUEST_TIMEOUT');
    expect(x.closed).toBe(true);
    expect(x.ms).toBeLessThan(REQUEST_TIMEOUT_MS + 1_500);
  });

  it('headers that trickle in forever are cut off within the request timeout too', async () => {
    const lines = Array.from({ length: 60 }, (_, i) => `X-Slow-${i}: 1\r\n`);
    const x = await rawExchange(t.url, ['GET /healthz HTTP/1.1\r\nHost: t\r\n', ...lines], { gapMs: 100, timeoutMs: REQUEST_TIMEOUT_MS * 3 });
    expect(x.closed).toBe(true);
    expect(x.ms).toBeLessThan(REQUEST_TIMEOUT_MS + 1_500);
    expectError(x.answers[0], 408, 'REQUEST_TIMEOUT');
  });
});

describe('lengths as the PG counts them', () => {
  it('accepts a paymentKey of 100 emoji: 200 UTF-16 code units, the PG’s limit', async () => {
    const body = paymentBody({ paymentKey: '\u{1F600}'.repeat(100) });
    const res = await postPayment(t, { body });
    expect(res.status).toBe(202);
    expect(res.json.paymentKey).toBe(body.paymentKey);
    // Accepted payments are not part of this file's key-space check (its merchant's fair queue
    // included).
    await t.redis.del(t.store.keys.byPaymentKey(body.paymentKey as string), t.store.keys.byOrderId(body.orderId as string));
    keysBefore = await keysUnder(t.redis, t.prefix);
  });
});
