/**
 * The read timeout, against a raw server that counts its open sockets: at the timeout the call
 * returns "no answer" (in doubt) and its connection is closed at once, which frees the PG's place
 * (the contract) and this process's share; the server still runs the request to its end. The
 * timeout follows the observed latency within its bounds, and a server that stops answering
 * drives it to the upper bound, where timeouts count as PG failures.
 */
import { READ_TIMEOUT } from '@sluice/domain';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgClient, type CallReport } from './client.ts';
import { Ungated } from './permits.ts';

let server: Server;
let url = '';
/** How long the server takes to answer, per paymentKey prefix; and whether the socket was still open then. */
const answerAfterMs: Record<string, number> = {};
const openWhenAnswering: Record<string, boolean> = {};
/** When the socket that carried a request closed (ms), per paymentKey. */
const closedAt: Record<string, number> = {};
let openSockets = 0;

beforeAll(async () => {
  server = createServer((req, res: ServerResponse) => {
    const key = decodeURIComponent((req.url ?? '').split('/').pop() ?? '');
    const prefix = key.replace(/_\d+$/, '');
    req.socket.once('close', () => (closedAt[key] = performance.now()));
    setTimeout(() => {
      openWhenAnswering[key] = !res.socket?.destroyed;
      if (res.socket?.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ paymentKey: key, status: 'DONE' }));
    }, answerAfterMs[prefix] ?? 0);
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

function client(readTimeout: { minMs: number; maxMs: number; factor?: number }, reports: CallReport[] = []): PgClient {
  return new PgClient(
    {
      baseUrl: url, secretKey: 'sk', connections: 4, reservedConnections: 1, connectTimeoutMs: 1_000,
      readTimeout: { factor: 3, ...readTimeout }, bodyTimeoutMs: 2_000, keepAliveTimeoutMs: 3_000, poolWaitTimeoutMs: 1_000,
    },
    new Ungated(),
    { onCall: (r) => reports.push(r) },
  );
}

describe('the read timeout', () => {
  it('returns "no answer" at once and closes the connection, freeing its place; the server runs on', async () => {
    answerAfterMs['pk_late'] = 1_500;
    const reports: CallReport[] = [];
    const c = client({ minMs: 300, maxMs: 300 }, reports);
    try {
      const began = performance.now();
      const r = await c.inquire('pk_late');
      expect(r).toMatchObject({ refused: false, raw: { transport: 'no_answer', reason: READ_TIMEOUT.atMax }, outcome: { kind: 'in_doubt' } });
      expect(performance.now() - began).toBeLessThan(1_400);
      // The place is free on both sides before the server answers: the socket that carried the
      // request is closed (undici may open a fresh idle one in its place, within the share).
      expect(c.stats().inFlight).toBe(0);
      await expect.poll(() => closedAt['pk_late'], { timeout: 1_000, interval: 10 }).toBeDefined();
      expect(closedAt['pk_late']! - began).toBeLessThan(1_400);
      expect(openSockets).toBeLessThanOrEqual(1);
      expect(openWhenAnswering['pk_late']).toBeUndefined();
      // The server still ran the request to its end, on a socket the client had closed.
      await expect.poll(() => openWhenAnswering['pk_late'], { timeout: 3_000, interval: 20 }).toBe(false);
      expect(reports).toHaveLength(1);
      expect(reports[0]).toMatchObject({ call: 'inquire', transport: 'no_answer', pgFailed: true, timeoutMs: 300 });
      expect(reports[0]!.holdMs).toBeLessThan(1_400);
    } finally {
      await c.close();
    }
  });

  it('follows the observed latency (factor × p75, within bounds) once the PG holds the connections; a timeout below the bound is no PG failure', async () => {
    answerAfterMs['pk_fast'] = 0;
    answerAfterMs['pk_slow'] = 400;
    const reports: CallReport[] = [];
    const c = client({ minMs: 200, maxMs: 5_000 }, reports);
    try {
      // Before enough samples: the upper bound.
      expect(c.stats().readTimeouts.inquire.timeoutMs).toBe(5_000);
      for (let i = 0; i < 32; i++) await c.inquire(`pk_fast_${i}`);
      // A fast server: the timeout falls to its lower bound; other call types keep theirs.
      expect(c.stats().readTimeouts.inquire.timeoutMs).toBe(200);
      expect(c.stats().readTimeouts.confirm.timeoutMs).toBe(5_000);
      // With connections to spare, a slow call may take up to the bound: it is answered.
      expect(await c.inquire('pk_slow_0')).toMatchObject({ raw: { transport: 'answered', httpStatus: 200 } });
      // Once the PG holds the share's connections with requests awaiting answers (here 3 of the
      // 3 a confirm could use), a call slower than the adaptive timeout is cut there: in doubt,
      // and no PG failure.
      const batch = [1, 2, 3].map((i) => c.inquire(`pk_slow_${i}`));
      await expect.poll(() => reports.length, { timeout: 100, interval: 5 }).toBe(33);
      await new Promise((r) => setTimeout(r, 50));
      const cut = await c.inquire('pk_slow_4');
      expect(cut).toMatchObject({ raw: { transport: 'no_answer', reason: READ_TIMEOUT.adaptive } });
      expect(reports.at(-1)).toMatchObject({ pgFailed: false, timeoutMs: 200 });
      expect((await Promise.all(batch)).map((r) => (r.refused ? 'refused' : r.raw.transport))).toEqual(['answered', 'answered', 'answered']);
    } finally {
      await c.close();
    }
  });

  it('counts a timed-out call as a sample as long as its timeout, so a server that stops answering drives it up to the bound', async () => {
    answerAfterMs['pk_quick'] = 0;
    answerAfterMs['pk_hang'] = 10_000;
    const c = client({ minMs: 50, maxMs: 500 }, []);
    try {
      for (let i = 0; i < 32; i++) await c.inquire(`pk_quick_${i}`);
      expect(c.stats().readTimeouts.inquire.timeoutMs).toBe(50);
      const seen: number[] = [];
      let last: Awaited<ReturnType<PgClient['inquire']>> | null = null;
      for (let i = 0; i < 48 && c.stats().readTimeouts.inquire.timeoutMs < 500; i++) {
        const batch = await Promise.all([0, 1, 2, 3].map((j) => c.inquire(`pk_hang_${i * 4 + j}`)));
        last = batch[0]!;
        if (batch.some((r) => r.refused || r.raw.transport !== 'no_answer')) throw new Error(`unexpected ${JSON.stringify(batch)}`);
        seen.push(c.stats().readTimeouts.inquire.timeoutMs);
      }
      // It grew (never fell) and reached the bound; once there, a timeout is a PG failure.
      expect(seen.every((v, i) => i === 0 || v >= seen[i - 1]!)).toBe(true);
      expect(seen.length).toBeGreaterThan(1);
      expect(c.stats().readTimeouts.inquire.timeoutMs).toBe(500);
      expect(last).not.toBeNull();
      const atBound = await c.inquire('pk_hang_999');
      expect(atBound).toMatchObject({ raw: { transport: 'no_answer', reason: READ_TIMEOUT.atMax } });
    } finally {
      await c.close();
    }
  });

  it('keeps connections for inquiries and cancels that confirms cannot take', async () => {
    answerAfterMs['confirm'] = 800;
    const reports: CallReport[] = [];
    const c = client({ minMs: 5_000, maxMs: 5_000 }, reports);
    try {
      // Four connections, one reserved: three confirms hold the rest, a fourth waits...
      const confirms = [0, 1, 2, 3].map((i) => c.confirm({ paymentKey: `pk_held_${i}`, orderId: `order_${i}`, amount: 1 }, {}));
      // (the server reads a confirm's key from the path: /v1/payments/confirm)
      await expect.poll(() => c.stats().inFlight, { timeout: 1_000, interval: 5 }).toBe(3);
      // ...while an inquiry goes at once on the reserved one.
      answerAfterMs['pk_money'] = 0;
      const began = performance.now();
      expect(await c.inquire('pk_money')).toMatchObject({ raw: { transport: 'answered', httpStatus: 200 } });
      expect(performance.now() - began).toBeLessThan(700);
      expect(c.stats().inFlight).toBe(3);
      await Promise.all(confirms);
      expect(reports.filter((r) => r.call === 'confirm' && r.transport === 'answered')).toHaveLength(4);
    } finally {
      await c.close();
    }
  });

  it('lets a call within its read timeout get its answer before closing', async () => {
    answerAfterMs['pk_closing'] = 200;
    const c = client({ minMs: 5_000, maxMs: 5_000 });
    const pending = c.inquire('pk_closing');
    await expect.poll(() => openWhenAnswering['pk_closing'] ?? openSockets, { timeout: 1_000, interval: 5 }).toBeTruthy();
    await c.close();
    expect(await pending).toMatchObject({ raw: { transport: 'answered', httpStatus: 200 } });
  });
});
