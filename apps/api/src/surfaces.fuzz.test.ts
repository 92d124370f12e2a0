/**
 * Fuzzing every surface that takes input, written to the socket byte for byte: methods, paths
 * and their percent-escapes, query strings, header names, values, counts and sizes, and the
 * framing (Content-Length that lies, chunked bodies valid, broken and truncated, two requests
 * pipelined). Seeded and bounded: `FUZZ_SEED` replays a run (the seed and the failing request are
 * in the failure message). For every request, whatever it is:
 * - never a 500, and a 503 only with a code the README lists (or /readyz's own body);
 * - every error (4xx, 503) is JSON with a string `code`;
 * - it is answered, or its connection closed, within the request timeout.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paymentBody, postPayment, rawExchange, startTestApp, type RawAnswer, type TestApp } from './test-support.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const CASES = 2_000;
const PARALLEL = 24;
const REQUEST_TIMEOUT_MS = 1_500;
/** Node looks for expired requests every 500 ms (http-server.ts); the rest is a loaded machine. */
const ANSWER_WITHIN_MS = REQUEST_TIMEOUT_MS + 500 + 1_500;
/** 503 codes the README lists. */
const LISTED_503 = ['BACKLOG_FULL', 'TOO_MANY_WAITERS', 'REDIS_UNAVAILABLE'];

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ REQUEST_TIMEOUT_MS });
});
afterAll(async () => {
  await t.close();
});

/** One request as written: head lines and body bytes. */
interface RawRequest {
  method: string;
  target: string;
  headers: [string, string][];
  body: Buffer;
  framing: 'none' | 'length' | 'short-length' | 'chunked' | 'bad-chunked' | 'truncated-chunked' | 'length-and-chunked';
}

const PATHS = ['/v1/payments', '/v1/payments/pay_0mwtg0rp12c8a1204a9db35e3', '/healthz', '/readyz', '/openapi.json', '/docs', '/dashboard', '/dashboard/data', '/metrics', '/admin/queues', '/admin/queues/api/queues', '/', ''];
const ESCAPES = ['%41', '%', '%E0%A4%A', '%00', '%2F', '%C0%AF', '%ff', '%%', '%zz', '%u0041', '..', '.', '//', ';', '%0d%0a', '\u00e9', '\u{1F600}', '*'];

const segment = fc.oneof(
  { arbitrary: fc.constantFrom(...ESCAPES), weight: 3 },
  { arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 12 }).map((s) => s.replace(/[\s?#]/g, '')), weight: 3 },
  { arbitrary: fc.integer({ min: 1, max: 5_000 }).map((n) => 'a'.repeat(n)), weight: 1 },
);
const path = fc.oneof(
  fc
    .tuple(fc.constantFrom(...PATHS), fc.array(segment, { maxLength: 3 }), fc.boolean())
    .map(([base, segs, slash]) => (segs.length ? `${base}/${segs.join('/')}` : base) + (slash ? '/' : '') || '/'),
  // A route parameter itself: a payment id, a queue name.
  fc.tuple(fc.constantFrom('/v1/payments/', '/admin/queues/api/queues/', '/admin/queues/api/queues/confirm/'), segment).map(([base, seg]) => base + seg),
);
const queryPart = fc.oneof(
  fc.constantFrom('wait=5', 'wait=31', 'wait=-1', 'wait=1.5', 'wait=abc', 'wait=', 'wait=5&wait=6', 'orderId=order-1', 'orderId=', 'orderId=%E0%A4%A', 'orderId[]=x', '__proto__=1', 'orderId[a]=1', '%'),
  fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`),
);
const target = fc.tuple(path, fc.array(queryPart, { maxLength: 3 })).map(([p, q]) => (q.length ? `${p}?${q.join('&')}` : p));

/** Header values: sane, odd bytes (not CR or LF: those end the line), or large. */
const headerValue = fc.oneof(
  { arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }).map((v) => v.replace(/[\x00-\x1f\x7f]/g, '')), weight: 12 },
  { arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b.filter((x) => x !== 13 && x !== 10)).toString('latin1')), weight: 1 },
  { arbitrary: fc.integer({ min: 100, max: 20_000 }).map((n) => 'v'.repeat(n)), weight: 1 },
);
const tokenName = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}$/);
const headerName = fc.oneof(
  { arbitrary: fc.constantFrom('Authorization', 'Idempotency-Key', 'Content-Type', 'X-Request-Id', 'X-Forwarded-For', 'Content-Encoding', 'Accept', 'Cookie', 'Origin'), weight: 6 },
  { arbitrary: tokenName, weight: 6 },
  { arbitrary: fc.constantFrom('Bad Header', 'Ünïcode', '', 'X:Colon'), weight: 1 },
);

const auth = fc.constantFrom('merchant', 'admin', 'garbage', 'none', 'twice');
const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', '', 'application/json, text/plain');

const body = fc.oneof(
  fc.constant(null).map(() => Buffer.from(JSON.stringify(paymentBody()))),
  fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.constantFrom('{"paymentKey":"pk_d","orderId":"order-dup","amount":1,"amount":2}', '{"paymentKey":"pk_\\ud800","orderId":"order-lone","amount":1}', '{').map((s) => Buffer.from(s)),
  fc.integer({ min: 10_000, max: 40_000 }).map((n) => Buffer.alloc(n, 0x61)),
);

/** A third of the cases aim at the intake: a POST /v1/payments that gets past auth, so its body reader and validation see the input. */
const intake = fc.record({
  method: fc.constant('POST'),
  target: fc.constantFrom('/v1/payments', '/v1/payments', '/v1/payments?wait=1'),
  auth: fc.constantFrom('merchant', 'merchant', 'merchant', 'twice', 'none'),
  contentType: fc.constantFrom('application/json', 'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1', 'text/plain', ''),
  idempotency: fc.constantFrom('fresh', 'fresh', 'fresh', 'fresh', 'fresh', 'none', 'twice', 'long', 'odd', 'control'),
  framing: fc.constantFrom('length', 'length', 'length', 'short-length', 'short-length', 'chunked', 'chunked', 'bad-chunked', 'truncated-chunked', 'length-and-chunked'),
});
/** A third are reads that get past auth: paths, parameters and query strings reach the routes. */
const reads = fc.record({
  method: fc.constantFrom('GET', 'GET', 'HEAD'),
  target,
  auth: fc.constantFrom('merchant', 'admin'),
  contentType: fc.constant(''),
  idempotency: fc.constant('none'),
  framing: fc.constantFrom('none', 'none', 'none', 'length', 'short-length', 'chunked'),
});
const anywhere = fc.record({

  method: fc.oneof(
    { arbitrary: fc.constantFrom('GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND'), weight: 12 },
    { arbitrary: fc.stringMatching(/^[A-Z]{1,10}$/), weight: 1 },
  ),
  target,
  auth,
  contentType,
  idempotency: fc.constantFrom('fresh', 'fresh', 'fresh', 'none', 'twice', 'long', 'odd', 'control'),
  framing: fc.constantFrom('none', 'none', 'length', 'length', 'length', 'length', 'short-length', 'chunked', 'chunked', 'bad-chunked', 'truncated-chunked', 'length-and-chunked'),
});

const request: fc.Arbitrary<RawRequest> = fc
  .record({
    line: fc.oneof(intake, reads, anywhere),
    extra: fc.array(fc.tuple(headerName, headerValue), { maxLength: 3 }),
    many: fc.constantFrom(0, 0, 0, 50, 300),
    body,
  })
  .map(({ line, ...r }) => {
    const headers: [string, string][] = [['Host', 't']];
    const merchant = `Bearer ${t.keyA}`;
    const admin = `Basic ${Buffer.from('ops:ops-password-1').toString('base64')}`;
    if (line.auth === 'merchant') headers.push(['Authorization', merchant]);
    if (line.auth === 'admin') headers.push(['Authorization', admin]);
    if (line.auth === 'garbage') headers.push(['Authorization', 'Bearer nope']);
    if (line.auth === 'twice') headers.push(['Authorization', merchant], ['Authorization', admin]);
    if (line.contentType) headers.push(['Content-Type', line.contentType]);
    if (line.idempotency === 'fresh') headers.push(['Idempotency-Key', randomUUID()]);
    if (line.idempotency === 'twice') headers.push(['Idempotency-Key', randomUUID()], ['Idempotency-Key', randomUUID()]);
    if (line.idempotency === 'long') headers.push(['Idempotency-Key', 'k'.repeat(300)]);
    if (line.idempotency === 'odd') headers.push(['Idempotency-Key', 'caf\u00e9']);
    if (line.idempotency === 'control') headers.push(['Idempotency-Key', 'k\u0001']);
    headers.push(...r.extra);
    for (let i = 0; i < r.many; i++) headers.push([`X-Many-${i}`, String(i)]);
    return { method: line.method, target: line.target, headers, body: r.body, framing: line.framing as RawRequest['framing'] };
  });

/** The request as bytes, framed as it says. */
function bytesOf(r: RawRequest): Buffer {
  const headers = [...r.headers];
  let payload: Buffer = Buffer.alloc(0);
  switch (r.framing) {
    case 'none':
      break;
    case 'length':
      headers.push(['Content-Length', String(r.body.length)]);
      payload = r.body;
      break;
    case 'short-length':
      // Declares more than it sends: only the request timeout ends it (or a 413 from the header).
      headers.push(['Content-Length', String(r.body.length + 10)]);
      payload = r.body;
      break;
    case 'chunked':
      headers.push(['Transfer-Encoding', 'chunked']);
      payload = Buffer.concat([Buffer.from(`${r.body.length.toString(16)}\r\n`), r.body, Buffer.from('\r\n0\r\n\r\n')]);
      break;
    case 'bad-chunked':
      headers.push(['Transfer-Encoding', 'chunked']);
      payload = Buffer.concat([Buffer.from('zz\r\n'), r.body]);
      break;
    case 'truncated-chunked':
      headers.push(['Transfer-Encoding', 'chunked']);
      payload = Buffer.concat([Buffer.from(`${(r.body.length + 5).toString(16)}\r\n`), r.body]);
      break;
    case 'length-and-chunked':
      headers.push(['Content-Length', String(r.body.length)], ['Transfer-Encoding', 'chunked']);
      payload = r.body;
      break;
  }
  const head = `${r.method} ${r.target} HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
}

/** One case: a request, and sometimes a second one pipelined behind it on the same connection. */
const fuzzCase = fc.tuple(request, fc.option(fc.constant('GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n'), { freq: 4 }));

function checkAnswer(a: RawAnswer, method: string, what: () => string): void {
  expect(a.status, what()).not.toBe(500);
  expect(a.status >= 500 && a.status !== 503, what()).toBe(false);
  if (a.status < 400 || method === 'HEAD') return;
  expect(a.headers['content-type'], what()).toMatch(/^application\/json/);
  const parsed = JSON.parse(a.text) as { code?: unknown; status?: unknown };
  if (a.status === 503 && parsed.status === 'unavailable') return; // /readyz's own body
  expect(typeof parsed.code, what()).toBe('string');
  if (a.status === 503) expect(LISTED_503, what()).toContain(parsed.code);
}

describe('every surface under fuzzing', () => {
  it(`answers ${CASES} seeded hostile requests (seed ${SEED}) with no 500, JSON errors, and within the request timeout`, async () => {
    const cases = fc.sample(fuzzCase, { seed: SEED, numRuns: CASES });
    const statuses = new Map<number, number>();
    let closedWithoutAnswer = 0;
    let next = 0;
    const runOne = async (i: number): Promise<void> => {
      const [req, pipelined] = cases[i]!;
      const bytes = bytesOf(req);
      const methods = pipelined ? [req.method, 'GET'] : [req.method];
      const what = () => `seed ${SEED}, case ${i}: ${bytes.subarray(0, 600).toString('latin1').replace(/\r\n/g, '⏎')}`;
      const x = await rawExchange(t.url, [pipelined ? Buffer.concat([bytes, Buffer.from(pipelined)]) : bytes], { methods, timeoutMs: ANSWER_WITHIN_MS });
      expect(x.closed || x.answeredAll, `not answered or closed within ${ANSWER_WITHIN_MS} ms: ${what()}`).toBe(true);
      if (x.answers.length === 0) closedWithoutAnswer++;
      x.answers.forEach((a, k) => {
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        checkAnswer(a, methods[k] ?? 'GET', what);
      });
    };
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < cases.length) await runOne(next++);
      }),
    );
    // The run reached the answers it is about, not only one kind.
    for (const s of [200, 400, 401, 404, 405, 408, 413, 415, 431]) expect(statuses.get(s) ?? 0, `status ${s} in ${JSON.stringify([...statuses])}`).toBeGreaterThan(0);
    // Only what Node drops unanswered (CONNECT-like upgrades) closes without a word: a few at most.
    expect(closedWithoutAnswer).toBeLessThan(CASES * 0.05);
  }, 120_000);

  it('is still healthy afterwards: it answers and takes a payment', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect((await postPayment(t, { body: paymentBody() })).status).toBe(202);
  });
});
