/**
 * The books over real processes: payments through the API while the drainer is killed with
 * kill -9 and the database goes away for a while; once all is final and drained, every payment
 * in PostgreSQL equals the simulator's ledger (the money rules, checked on the books), once each,
 * at the version Redis holds, with its history and its PG calls.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { booksPool } from '@sluice/books';
import { checkInvariants, getJson, startTcpProxy, type LedgerEntry, type TcpProxy } from '@sluice/test-support';
import { DEMO_KEY, postPayment, startStack, type Stack } from './support/stack.ts';

let s: Stack;
let proxy: TcpProxy;
let pool: pg.Pool;
beforeAll(async () => {
  proxy = await startTcpProxy(5432);
  s = await startStack({ books: true, sim: { SIM_LATENCY_MEDIAN_MS: '30', SIM_LATENCY_P99_MS: '300', SIM_DECLINE_RATE: '0.1' }, env: { DRAIN_CLAIM_IDLE_MS: '2000' } });
  pool = booksPool(s.databaseUrl!);
});
afterAll(async () => {
  await pool?.end();
  await s?.stop();
  await proxy?.close();
});

/** The drainers reach the database through the proxy, so that the test can take it away. */
const viaProxy = (): string => {
  const u = new URL(s.databaseUrl!);
  u.host = `127.0.0.1:${proxy.port}`;
  return u.toString();
};

describe('the books over a run with a drainer killed and the database away', () => {
  it('hold every payment once, equal to the PG’s ledger, at the version Redis holds', async () => {
    // The first drainer (direct) applied the migrations; the ones under test go through the proxy.
    await s.drainers[0]!.stop();
    s.drainers.length = 0;
    const first = await s.startDrainer({ DATABASE_URL: viaProxy() });

    const run = Date.now().toString(36);
    const ids: string[] = [];
    const send = async (from: number, n: number) => {
      const posts = await Promise.all(
        Array.from({ length: n }, (_, k) => {
          const i = from + k;
          const paymentKey = i % 25 === 0 ? `sim_nosession_${run}_${i}` : `pk_${run}_${i}`;
          return postPayment(s.apiUrl, { paymentKey, orderId: `order-${run}-${i}`, amount: 1_000 + i }, `books-${run}-${i}`);
        }),
      );
      expect(posts.map((p) => p.status)).toEqual(Array(n).fill(202));
      ids.push(...posts.map((p) => p.body.id));
    };

    await send(0, 100);
    // kill -9 mid-run: whatever it held unacknowledged is taken over by the next drainer.
    first.child.kill('SIGKILL');
    await send(100, 100);
    await s.startDrainer({ DATABASE_URL: viaProxy() });
    // The database goes away for 4 s under load; intake and the PG calls go on.
    proxy.down();
    await send(200, 100);
    await new Promise((r) => setTimeout(r, 4_000));
    proxy.up();

    // Every payment final (as merchants see it), then every change in the books.
    const deadline = Date.now() + 90_000;
    const pending = new Set(ids);
    while (pending.size > 0 && Date.now() < deadline) {
      for (const id of [...pending]) {
        const p = await getJson<{ status: string }>(`${s.apiUrl}/v1/payments/${id}`, { headers: { authorization: `Bearer ${DEMO_KEY}` } });
        if (['APPROVED', 'DECLINED', 'FAILED', 'CANCELED'].includes(p.status)) pending.delete(id);
      }
      if (pending.size > 0) await new Promise((r) => setTimeout(r, 300));
    }
    expect([...pending]).toEqual([]);
    let rows: { id: string; payment_key: string; status: string; version: string }[] = [];
    while (Date.now() < deadline) {
      rows = (await pool.query('SELECT id, payment_key, status, version FROM payments WHERE id = ANY($1::text[])', [ids])).rows;
      const versions = await Promise.all(rows.map((r) => s.redis.hget(`${s.prefix}:pay:${r.id}`, 'v')));
      if (rows.length === ids.length && rows.every((r, i) => versions[i] === null || String(r.version) === versions[i])) break;
      await new Promise((r) => setTimeout(r, 300));
    }

    // Once each, at Redis's version (or archived), and the money rules hold on the books.
    expect(rows).toHaveLength(ids.length);
    const ledger = (await getJson<{ payments: Record<string, LedgerEntry> }>(`${s.simUrl}/__sim/ledger`)).payments;
    const report = checkInvariants(ids, new Map(rows.map((r) => [r.id, { id: r.id, paymentKey: r.payment_key, status: r.status }])), ledger);
    expect(report.lost).toEqual([]);
    expect(report.notFinal).toEqual([]);
    expect(report.doubleCharges).toEqual([]);
    expect(report.mismatches).toEqual([]);
    expect(report.final).toBe(300);
    // Every payment's history starts at intake and ends final; every confirm the PG charged is a recorded call.
    const events = await pool.query(
      `SELECT payment_id, min(version) AS first, max(version) AS last, count(*)::int AS n, bool_or(to_phase = 'final') AS final
       FROM payment_events WHERE payment_id = ANY($1::text[]) GROUP BY 1`,
      [ids],
    );
    expect(events.rowCount).toBe(ids.length);
    for (const e of events.rows) {
      expect([Number(e.first), e.final, e.n]).toEqual([1, true, Number(e.last)]);
    }
    const confirmed = await pool.query(`SELECT count(DISTINCT payment_id)::int AS n FROM pg_calls WHERE call = 'confirm' AND payment_id = ANY($1::text[])`, [ids]);
    expect(confirmed.rows[0].n).toBe(ids.length);
    // The outage was seen, and survived.
    expect(s.drainers.map((d) => d.output()).join('')).toMatch(/books write failed; retrying/);
  });
});
