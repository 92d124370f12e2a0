/**
 * The intake front (intake.ts) against Express's own `POST /v1/payments` route, over real Redis:
 * `/v1/payments` is served ahead of Express, `/v1/payments/` (which Express's route also matches)
 * by Express. Every request below gets the same answer from both, header for header and byte for
 * byte, but for what differs by nature (the payment's id, a fresh request id, the date).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentBody, rawExchange, startTestApp, type RawAnswer, type TestApp } from './test-support.ts';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ BODY_LIMIT_BYTES: 2_048 });
});
afterAll(async () => {
  await t.close();
});

/** One raw request to `path`: `headers` as given (a name may repeat), then `body`. */
async function send(path: string, headers: [string, string][], body: string): Promise<{ answer: RawAnswer | undefined; closed: boolean }> {
  const head = [`POST ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers.map(([n, v]) => `${n}: ${v}`)];
  if (!headers.some(([n]) => ['content-length', 'transfer-encoding'].includes(n.toLowerCase()))) head.push(`Content-Length: ${Buffer.byteLength(body)}`);
  const x = await rawExchange(t.url, [`${head.join('\r\n')}\r\n\r\n${body}`], { methods: ['POST'], timeoutMs: 3_000 });
  return { answer: x.answers[0], closed: x.closed };
}

/** What must match: status, every header but the date, the body; with what differs by nature masked (ids, keys, times, lengths). */
function comparable(a: RawAnswer | undefined, ids: string[]): unknown {
  if (!a) return null;
  const mask = (s: string): string => ids.reduce((acc, id) => acc.replaceAll(id, '<id>'), s).replace(/"(createdAt|updatedAt|eta|paymentKey|orderId)":"[^"]*"/g, '"$1":"<x>"');
  const headers = Object.fromEntries(
    Object.entries(a.headers)
      .filter(([n]) => n !== 'date' && n !== 'keep-alive')
      .map(([n, v]) => [n, n === 'x-request-id' && !v.startsWith('given-') ? '<fresh>' : n === 'content-length' ? 'n' : mask(v)]),
  );
  return { status: a.status, headers, body: mask(a.text) };
}

const auth = (): [string, string] => ['Authorization', `Bearer ${t.keyA}`];
const json: [string, string] = ['Content-Type', 'application/json'];

/** Each case: the headers and body for a request at a given idempotency key (fresh per path unless the case shares one). */
const cases: { name: string; request: (idem: string) => { headers: [string, string][]; body: string } }[] = [
  { name: 'a payment', request: (idem) => ({ headers: [auth(), json, ['Idempotency-Key', idem], ['X-Request-Id', 'given-1']], body: JSON.stringify(paymentBody()) }) },
  { name: 'no API key', request: (idem) => ({ headers: [json, ['Idempotency-Key', idem]], body: JSON.stringify(paymentBody()) }) },
  { name: 'a wrong API key', request: (idem) => ({ headers: [['Authorization', 'Bearer sk_nobody'], json, ['Idempotency-Key', idem]], body: '{}' }) },
  { name: 'no Idempotency-Key', request: () => ({ headers: [auth(), json], body: JSON.stringify(paymentBody()) }) },
  { name: 'text/plain', request: (idem) => ({ headers: [auth(), ['Content-Type', 'text/plain'], ['Idempotency-Key', idem]], body: 'hello' }) },
  { name: 'gzip', request: (idem) => ({ headers: [auth(), json, ['Content-Encoding', 'gzip'], ['Idempotency-Key', idem]], body: '{}' }) },
  { name: 'latin-1', request: (idem) => ({ headers: [auth(), ['Content-Type', 'application/json; charset=latin1'], ['Idempotency-Key', idem]], body: '{}' }) },
  { name: 'too large by its header', request: (idem) => ({ headers: [auth(), json, ['Idempotency-Key', idem], ['Content-Length', '9999']], body: '{}' }) },
  { name: 'too large as sent', request: (idem) => ({ headers: [auth(), json, ['Idempotency-Key', idem]], body: JSON.stringify({ ...paymentBody(), padding: 'x'.repeat(3_000) }) }) },
  { name: 'not JSON', request: (idem) => ({ headers: [auth(), json, ['Idempotency-Key', idem]], body: '{"amount":' }) },
  { name: 'a key twice', request: (idem) => ({ headers: [auth(), json, ['Idempotency-Key', idem]], body: '{"amount":1,"amount":2}' }) },
  { name: 'invalid fields', request: (idem) => ({ headers: [auth(), json, ['Idempotency-Key', idem]], body: JSON.stringify({ amount: -1 }) }) },
  { name: 'a card number in metadata', request: (idem) => ({ headers: [auth(), json, ['Idempotency-Key', idem]], body: JSON.stringify(paymentBody({ metadata: { n: '4111111111111111' } })) }) },
  { name: 'Authorization twice', request: (idem) => ({ headers: [auth(), auth(), json, ['Idempotency-Key', idem]], body: '{}' }) },
  {
    name: 'a chunked body',
    request: (idem) => {
      const body = JSON.stringify(paymentBody());
      const half = Math.floor(body.length / 2);
      const chunk = (c: string): string => `${Buffer.byteLength(c).toString(16)}\r\n${c}\r\n`;
      return { headers: [auth(), json, ['Idempotency-Key', idem], ['Transfer-Encoding', 'chunked']], body: `${chunk(body.slice(0, half))}${chunk(body.slice(half))}0\r\n\r\n` };
    },
  },
  { name: 'Expect: 100-continue', request: (idem) => ({ headers: [auth(), json, ['Idempotency-Key', idem], ['Expect', '100-continue']], body: JSON.stringify(paymentBody()) }) },
  { name: 'an odd X-Request-Id', request: (idem) => ({ headers: [auth(), json, ['Idempotency-Key', idem], ['X-Request-Id', 'a b']], body: JSON.stringify(paymentBody()) }) },
];

describe('the intake front answers as Express\'s route does', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const [a, b] = [c.request(randomUUID()), c.request(randomUUID())];
      const front = await send('/v1/payments', a.headers, a.body);
      const express = await send('/v1/payments/', b.headers, b.body);
      const ids = [front.answer, express.answer].map((a) => /"id":"(pay_[^"]+)"/.exec(a?.text ?? '')?.[1]).filter((x): x is string => !!x);
      expect(front.answer).toBeDefined();
      if (c.name === 'a payment' || c.name === 'a chunked body' || c.name === 'Expect: 100-continue') expect(front.answer?.status).toBe(202);
      expect(comparable(front.answer, ids)).toEqual(comparable(express.answer, ids));
      expect(front.closed).toBe(express.closed);
    });
  }

  it('replays a payment and refuses a reused key alike, whichever path took the first request', async () => {
    const body = paymentBody();
    const idem = randomUUID();
    const first = await send('/v1/payments', [auth(), json, ['Idempotency-Key', idem]], JSON.stringify(body));
    const viaExpress = await send('/v1/payments/', [auth(), json, ['Idempotency-Key', idem]], JSON.stringify(body));
    const viaFront = await send('/v1/payments', [auth(), json, ['Idempotency-Key', idem]], JSON.stringify(body));
    expect(first.answer?.status).toBe(202);
    expect(viaExpress.answer?.headers['idempotent-replayed']).toBe('true');
    expect(comparable(viaFront.answer, [])).toEqual(comparable(viaExpress.answer, []));
    const reused = { ...body, amount: 1 };
    const r1 = await send('/v1/payments', [auth(), json, ['Idempotency-Key', idem]], JSON.stringify(reused));
    const r2 = await send('/v1/payments/', [auth(), json, ['Idempotency-Key', idem]], JSON.stringify(reused));
    expect(r1.answer?.status).toBe(422);
    expect(comparable(r1.answer, [])).toEqual(comparable(r2.answer, []));
    // One payment in Redis for the key, as the replays said.
    expect(await t.store.get(JSON.parse(first.answer!.text).id)).toMatchObject({ paymentKey: body.paymentKey, status: 'QUEUED' });
  });

  it('counts the front\'s answers in /metrics', async () => {
    const before = await intakeCount();
    await send('/v1/payments', [auth(), json, ['Idempotency-Key', randomUUID()]], JSON.stringify(paymentBody()));
    await send('/v1/payments', [json, ['Idempotency-Key', randomUUID()]], '{}');
    const after = await intakeCount();
    expect(after.accepted - before.accepted).toBe(1);
    expect(after.refused - before.refused).toBe(1);
    expect(before.accepted).toBeGreaterThan(0);
  });
});

/** The intake counter's accepted and 4xx totals, from the operator's /metrics. */
async function intakeCount(): Promise<{ accepted: number; refused: number }> {
  const admin = `Basic ${Buffer.from(`${t.config.ADMIN_USER}:${t.config.ADMIN_PASSWORD}`).toString('base64')}`;
  const text = await (await fetch(`${t.url}/metrics`, { headers: { authorization: admin } })).text();
  const sum = (re: RegExp): number => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  return { accepted: sum(/^sluice_intake_requests_total\{[^}]*outcome="accepted"[^}]*\} (\d+)/gm), refused: sum(/^sluice_intake_requests_total\{[^}]*outcome="unauthorized"[^}]*\} (\d+)/gm) };
}
