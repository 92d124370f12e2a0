/**
 * The permit is checked once more as undici writes a request: a request found too late then is
 * not written at all, the connection stays open, and the call goes out on a new slot.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgClient } from './client.ts';
import type { Permit, PermitSource, Priority } from './permits.ts';

let server: Server;
let url = '';
let connections = 0;
const received: string[] = [];
const paths: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    received.push(String(req.headers['x-request-id']));
    paths.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ paymentKey: 'pk', status: 'DONE' }));
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

/** Permits numbered 1, 2, …; the checks numbered in `lateOn` (1-based) answer "too late". */
class ScriptedPermits implements PermitSource {
  granted = 0;
  /** The server's connection count at each acquire. */
  connectionsAtAcquire: number[] = [];
  /** The permit each check looked at, in order. */
  checked: number[] = [];
  constructor(private readonly lateOn: Set<number>) {}
  acquire(priority: Priority): Promise<Permit> {
    this.connectionsAtAcquire.push(connections);
    return Promise.resolve({ slotMs: ++this.granted, marginMs: 10, priority });
  }
  isTooLate(p: Permit): boolean {
    this.checked.push(p.slotMs);
    return this.lateOn.has(this.checked.length);
  }
  sent(): void {}
  rateLimited(): void {}
}

function client(permits: PermitSource, baseUrl = url): PgClient {
  return new PgClient(
    { baseUrl, secretKey: 'sk', connections: 1, connectTimeoutMs: 1_000, readTimeout: { minMs: 2_000, maxMs: 2_000, factor: 3 }, bodyTimeoutMs: 2_000, keepAliveTimeoutMs: 3_000, poolWaitTimeoutMs: 1_000 },
    permits,
  );
}

describe('the check at the write', () => {
  it('does not write a request found too late, keeps the connection, and sends it on a new slot', async () => {
    // Check 1 is pg-client's own, before undici; check 2, at the write, finds permit 1 late.
    const permits = new ScriptedPermits(new Set([2]));
    const c = client(permits);
    try {
      const before = { connections, received: received.length };
      const r = await c.inquire('pk', { requestId: 'late-once' });
      expect(r.refused).toBe(false);
      if (!r.refused) expect(r.outcome.kind).toBe('approved');
      // Permit 1 was never written; permit 2 went out, checked before undici and at its write.
      // The PG saw one request, over one connection.
      expect(permits.checked).toEqual([1, 1, 2, 2]);
      expect(permits.granted).toBe(2);
      expect(received.slice(before.received)).toEqual(['late-once']);
      expect(connections - before.connections).toBe(1);

      // The next call reuses that connection: the refusal did not destroy it.
      const again = await c.inquire('pk', { requestId: 'on-time' });
      expect(again.refused).toBe(false);
      expect(received.slice(before.received)).toEqual(['late-once', 'on-time']);
      expect(connections - before.connections).toBe(1);
    } finally {
      await c.close();
    }
  });

  it('sends at once when the write finds the permit on time', async () => {
    const permits = new ScriptedPermits(new Set());
    const c = client(permits);
    try {
      const before = received.length;
      const r = await c.inquire('pk', { requestId: 'on-time-2' });
      expect(r.refused).toBe(false);
      expect(permits.granted).toBe(1);
      expect(permits.checked).toEqual([1, 1]);
      expect(received.slice(before)).toEqual(['on-time-2']);
    } finally {
      await c.close();
    }
  });
});

describe('the guard after a new permit', () => {
  it('asks the guard again (as a re-check) once a late permit was replaced, and sends only if it still agrees', async () => {
    // Check 1 (before undici) finds permit 1 late: a new permit, then the guard again.
    const permits = new ScriptedPermits(new Set([1]));
    const c = client(permits);
    try {
      const asked: boolean[] = [];
      const before = received.length;
      const r = await c.inquire('pk', { requestId: 'rechecked', guard: async (recheck) => (asked.push(recheck), null) });
      expect(r.refused).toBe(false);
      expect(asked).toEqual([false, true]);
      expect(permits.granted).toBe(2);
      expect(received.slice(before)).toEqual(['rechecked']);

      // The phase moved while the new slot was awaited: the re-check refuses, and nothing goes out.
      const late = new ScriptedPermits(new Set([1]));
      const c2 = client(late);
      try {
        const refused = await c2.inquire('pk', { requestId: 'refused', guard: async (recheck) => (recheck ? 'moved on' : null) });
        expect(refused).toEqual({ refused: true, refusal: 'moved on' });
        expect(received.slice(before)).toEqual(['rechecked']);
      } finally {
        await c2.close();
      }
    } finally {
      await c.close();
    }
  });
});

describe('slots that keep going late', () => {
  it('give up as not sent (held back on our side, no PG failure) after a bounded number, having sent nothing', async () => {
    const permits = new ScriptedPermits(new Set(Array.from({ length: 100 }, (_, i) => i + 1)));
    const c = client(permits);
    try {
      const before = received.length;
      const r = await c.inquire('pk', { requestId: 'never' });
      expect(r).toMatchObject({ refused: false, raw: { transport: 'not_sent', reason: 'late_permits' }, outcome: { kind: 'not_sent' } });
      expect(permits.granted).toBe(8);
      expect(received.length).toBe(before);
    } finally {
      await c.close();
    }
  });
});

describe('the base URL', () => {
  it('may carry a path, which goes before every request path', async () => {
    for (const [base, want] of [[`${url}/pg/api/`, '/pg/api/v1/payments/pk'], [`${url}/`, '/v1/payments/pk']] as const) {
      const c = client(new ScriptedPermits(new Set()), base);
      try {
        const r = await c.inquire('pk');
        expect(r).toMatchObject({ refused: false, outcome: { kind: 'approved' } });
        expect(paths.at(-1)).toBe(want);
      } finally {
        await c.close();
      }
    }
  });
});

describe('the connection before the slot', () => {
  it('opens the connection before it takes a send slot, so that the write is not late for a connect', async () => {
    const permits = new ScriptedPermits(new Set());
    const c = client(permits);
    try {
      const before = connections;
      const r = await c.inquire('pk_first');
      expect(r).toMatchObject({ raw: { transport: 'answered', httpStatus: 200 } });
      // The server had accepted the connection when the slot was asked for, and the request went
      // on that same connection: one connection, one slot, no late write.
      expect(permits.connectionsAtAcquire).toEqual([before + 1]);
      expect(connections).toBe(before + 1);
      expect(permits.granted).toBe(1);
    } finally {
      await c.close();
    }
  });

  it('reports a connection that cannot be opened as not sent, without taking a slot', async () => {
    const permits = new ScriptedPermits(new Set());
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const c = client(permits, `http://127.0.0.1:${port}`);
    try {
      const r = await c.inquire('pk_refused');
      expect(r).toMatchObject({ raw: { transport: 'not_sent', reason: 'ECONNREFUSED' }, outcome: { kind: 'not_sent' } });
      expect(permits.granted).toBe(0);
    } finally {
      await c.close();
    }
  });
});

/** Permits that are assigned at once and come due `aheadMs` later, with the moments of both. */
class AheadPermits implements PermitSource {
  assignedAt: number[] = [];
  dueAt: number[] = [];
  constructor(private readonly aheadMs: number) {}
  acquire(priority: Priority, assigned?: (p: Permit) => void): Promise<Permit> {
    const permit = { slotMs: Date.now() + this.aheadMs, marginMs: 10_000, priority };
    this.assignedAt.push(Date.now());
    assigned?.(permit);
    return new Promise((resolve) =>
      setTimeout(() => {
        this.dueAt.push(Date.now());
        resolve(permit);
      }, this.aheadMs),
    );
  }
  isTooLate(): boolean {
    return false;
  }
  sent(): void {}
  rateLimited(): void {}
}

describe('the guard while the slot is awaited', () => {

  it('runs as soon as the slot is assigned, so that its round trip is over by the slot, and the request goes at the slot', async () => {
    const permits = new AheadPermits(300);
    const c = client(permits);
    // When each request reached the server.
    const at: number[] = [];
    const arrived = (): void => void at.push(Date.now());
    server.on('request', arrived);
    const guard: { started: number[]; ended: number[] } = { started: [], ended: [] };
    try {
      const r = await c.inquire('pk', {
        requestId: 'overlapped',
        guard: async () => {
          guard.started.push(Date.now());
          await new Promise((res) => setTimeout(res, 30));
          guard.ended.push(Date.now());
          return null;
        },
      });
      expect(r.refused).toBe(false);
      // One guard, started when the slot was assigned and done well before it came due; the
      // request reached the server after the slot, not a guard's round trip after it.
      expect(guard.started).toHaveLength(1);
      expect(guard.started[0]!).toBeLessThan(permits.dueAt[0]! - 200);
      expect(guard.ended[0]!).toBeLessThan(permits.dueAt[0]!);
      expect(at).toHaveLength(1);
      expect(at[0]!).toBeGreaterThanOrEqual(permits.dueAt[0]!);
    } finally {
      server.off('request', arrived);
      await c.close();
    }
  });

  it('waits for a guard slower than the slot, and sends nothing on a refusal', async () => {
    const permits = new AheadPermits(20);
    const c = client(permits);
    try {
      const before = received.length;
      const ended: number[] = [];
      const slow = await c.inquire('pk', {
        requestId: 'slow-guard',
        guard: async () => {
          await new Promise((res) => setTimeout(res, 200));
          ended.push(Date.now());
          return null;
        },
      });
      expect(slow.refused).toBe(false);
      expect(received.slice(before)).toEqual(['slow-guard']);
      // Sent after the guard's pass, which came well after the slot.
      expect(ended[0]!).toBeGreaterThan(permits.dueAt[0]! + 100);

      const refused = await c.inquire('pk', { requestId: 'refused-early', guard: async () => 'moved on' });
      expect(refused).toEqual({ refused: true, refusal: 'moved on' });
      expect(received.slice(before)).toEqual(['slow-guard']);
      expect(c.stats().unusedSlots).toBe(1);
    } finally {
      await c.close();
    }
  });
});
