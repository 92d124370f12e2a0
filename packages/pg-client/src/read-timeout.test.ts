/**
 * The read timeout: a call with no answer by then returns "no answer" (in doubt) at once, but its
 * connection stays open, and counted against this process's share, until the late answer is read
 * or `abandonAfterMs` passes. The PG goes on processing after our read timeout, and may count the
 * connection as long as it does.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgClient } from './client.ts';
import { Ungated } from './permits.ts';

let server: Server;
let url = '';
/** How long the server takes to answer, per paymentKey; and whether the socket was still open then. */
const answerAfterMs: Record<string, number> = {};
const openWhenAnswering: Record<string, boolean> = {};
let openSockets = 0;

beforeAll(async () => {
  server = createServer((req, res: ServerResponse) => {
    const key = decodeURIComponent((req.url ?? '').split('/').pop() ?? '');
    setTimeout(() => {
      openWhenAnswering[key] = !res.socket?.destroyed;
      if (res.socket?.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ paymentKey: key, status: 'DONE' }));
    }, answerAfterMs[key] ?? 0);
  });
  server.on('connection', (s) => {
    openSockets++;
    s.once('close', () => openSockets--);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

function client(abandonAfterMs: number): PgClient {
  return new PgClient(
    { baseUrl: url, secretKey: 'sk', connections: 2, connectTimeoutMs: 1_000, headersTimeoutMs: 300, abandonAfterMs, bodyTimeoutMs: 2_000, keepAliveTimeoutMs: 3_000, poolWaitTimeoutMs: 1_000 },
    new Ungated(),
  );
}

describe('the read timeout', () => {
  it('returns "no answer" at once, and keeps the connection open and counted until the late answer', async () => {
    answerAfterMs['pk_late'] = 1_500;
    const c = client(10_000);
    try {
      const began = performance.now();
      const r = await c.inquire('pk_late');
      expect(r).toMatchObject({ refused: false, raw: { transport: 'no_answer', reason: 'UND_ERR_HEADERS_TIMEOUT' }, outcome: { kind: 'in_doubt' } });
      expect(performance.now() - began).toBeLessThan(1_400);
      // Past our read timeout, the PG still holds the request: so does Sluice.
      expect(c.inFlight()).toBe(1);
      expect(openSockets).toBe(1);
      await expect.poll(() => c.inFlight(), { timeout: 5_000, interval: 20 }).toBe(0);
      expect(openWhenAnswering['pk_late']).toBe(true);
      // The connection was kept (the late answer read off it), not closed.
      expect(openSockets).toBe(1);
    } finally {
      await c.close();
    }
  });

  it('closes the connection after abandonAfterMs, and only then frees its place', async () => {
    answerAfterMs['pk_never'] = 3_000;
    const c = client(800);
    try {
      const r = await c.inquire('pk_never');
      expect(r).toMatchObject({ raw: { transport: 'no_answer' } });
      expect(c.inFlight()).toBe(1);
      await expect.poll(() => c.inFlight(), { timeout: 2_500, interval: 20 }).toBe(0);
      await expect.poll(() => openSockets, { timeout: 1_000, interval: 20 }).toBe(0);
      await expect.poll(() => openWhenAnswering['pk_never'], { timeout: 4_000, interval: 50 }).toBe(false);
    } finally {
      await c.close();
    }
  });

  it('closes at shutdown without waiting for answers past the read timeout', async () => {
    answerAfterMs['pk_shutdown'] = 5_000;
    const c = client(60_000);
    await c.inquire('pk_shutdown');
    expect(c.inFlight()).toBe(1);
    const began = performance.now();
    await c.close();
    // Nothing is left within its read timeout: no wait at all (not the 60 s abandon time).
    expect(performance.now() - began).toBeLessThan(800);
    await expect.poll(() => openSockets, { timeout: 1_000, interval: 20 }).toBe(0);
  });

  it('lets a call within its read timeout get its answer before closing', async () => {
    answerAfterMs['pk_closing'] = 200;
    const c = client(60_000);
    const pending = c.inquire('pk_closing');
    await expect.poll(() => openWhenAnswering['pk_closing'] ?? openSockets, { timeout: 1_000, interval: 5 }).toBeTruthy();
    await c.close();
    expect(await pending).toMatchObject({ raw: { transport: 'answered', httpStatus: 200 } });
  });
});
