/**
 * The mixed-fault run (bounded to about 2 minutes): 2,000 payments through the API while the PG
 * answers 10% late (after the read timeout, charge committed), drops 3% after committing, answers
 * 3% with an ambiguous 500 and 2% with a 502 (half committed, half not), and goes away for 10 s
 * (5 s refusing connections, then 5 s hanging). Then: drain, reconcile, and check the money rules.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIXED_FAULTS } from './support/faults.ts';
import { checkInvariants, GUARD_TO_ARRIVAL_MS, type LedgerEntry } from '@sluice/test-support';
import { getJson } from '@sluice/test-support';
import { drain, postPayment, readPayments, startStack, type Stack } from './support/stack.ts';

let s: Stack;
beforeAll(async () => {
  s = await startStack({
    workers: 2,
    sim: {
      SIM_LATENCY_MEDIAN_MS: '40',
      SIM_LATENCY_P99_MS: '400',
      SIM_SEED: '42',
      ...MIXED_FAULTS,
    },
    env: {
      WORKER_PROCESSES: '2',
      PG_HEADERS_TIMEOUT_MS: '1500',
      PG_CONNECT_TIMEOUT_MS: '500',
      RESOLVE_FIRST_INQUIRY_DELAY_MS: '1500',
      RETRY_BACKOFF_BASE_MS: '500',
      RETRY_BACKOFF_MAX_MS: '4000',
      BREAKER_OPEN_MS: '2000',
      BREAKER_PROBE_INTERVAL_MS: '1000',
      BREAKER_CONSECUTIVE_FAILURES: '15',
      RECONCILE_INTERVAL_MS: '3600000',
      WORKER_LOCK_MS: '10000',
    },
  });
});
afterAll(async () => {
  await s?.stop();
});

interface Arrivals {
  arrivals: [number, string, number][];
}

describe('mixed PG faults', () => {
  it('2,000 payments: 0 lost, 0 double charges, 100% final, 0 mismatches, 0 repairs; the breaker held confirms back during the outage', async () => {
    const run = Date.now().toString(36);
    const ids: string[] = [];
    const rejected: number[] = [];
    const started = Date.now();
    let outageAt = 0;
    // ~200 payments/s for 10 s, open loop; the outage starts at 3 s.
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 2_000; i++) {
      const due = started + i * 5;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (i === 600) {
        outageAt = Date.now();
        await s.simConfig({ outage: 'refuse', outageMs: 5_000 });
        setTimeout(() => void s.simConfig({ outage: 'hang', outageMs: 5_000 }), 5_000);
      }
      sends.push(
        postPayment(s.apiUrl, { paymentKey: `pk_${run}_${i}`, orderId: `order-${run}-${i}`, amount: 1_000 }, `mf-${run}-${i}`).then((r) => {
          if (r.status === 202) ids.push(r.body.id);
          else rejected.push(r.status);
        }),
      );
    }
    await Promise.all(sends);
    expect(rejected).toEqual([]);
    expect(ids).toHaveLength(2_000);

    const drainMs = await drain(s.redis, s.prefix, 100_000);

    // Reconcile now, through the worker's maintenance queue, and read its report.
    const { Queue } = await import('bullmq');
    const q = new Queue('maintenance', { connection: s.redis, prefix: s.prefix });
    const job = await q.add('reconcile', {});
    for (let i = 0; i < 100 && !(await job.isCompleted()); i++) await new Promise((r) => setTimeout(r, 200));
    const recon = await s.redis.hgetall(`${s.prefix}:recon:last`);
    await q.close();

    const records = await readPayments(s.redis, s.prefix, ids);
    const views = new Map([...records].map(([id, r]) => [id, { id, paymentKey: r.paymentKey!, status: r.status! }]));
    const ledger = (await getJson<{ payments: Record<string, LedgerEntry> }>(`${s.simUrl}/__sim/ledger`)).payments;
    const report = checkInvariants(ids, views, ledger);
    const inDoubt = [...records.values()].filter((r) => r.inDoubtAt);
    const callsPerInDoubt = inDoubt.reduce((a, r) => a + Number(r.pgCalls), 0) / Math.max(1, inDoubt.length);
    console.log('mixed faults', { drainMs, byStatus: report.byStatus, inDoubt: inDoubt.length, callsPerInDoubt, recon });

    expect(report.lost).toEqual([]);
    expect(report.notFinal).toEqual([]);
    expect(report.final).toBe(2_000);
    expect(report.doubleCharges).toEqual([]);
    expect(report.mismatches).toEqual([]);
    expect(recon.complete).toBe('true');
    expect(Number(recon.repaired)).toBe(0);
    // Every approval was read from the PG's book (over several pages) and matched.
    expect(Number(recon.matched)).toBe(report.byStatus.APPROVED);
    expect(inDoubt.length).toBeGreaterThan(100);

    // The breaker opened during the outage, and no confirm reached the PG while it was open.
    const log = (await s.redis.lrange(`${s.prefix}:breaker:log`, 0, -1)).map((l) => JSON.parse(l) as { at: number; state: string }).reverse();
    const opened = log.filter((e) => e.state === 'open' && e.at >= outageAt && e.at <= outageAt + 11_000);
    expect(opened.length).toBeGreaterThan(0);
    const openIntervals: [number, number][] = [];
    for (let i = 0; i < log.length; i++) {
      if (log[i]!.state !== 'open') continue;
      const end = log.slice(i + 1).find((e) => e.state !== 'open');
      openIntervals.push([log[i]!.at, end ? end.at : Date.now()]);
    }
    const { arrivals } = await getJson<Arrivals>(`${s.simUrl}/__sim/arrivals?since=0`);
    const confirmsWhileOpen = arrivals.filter(([t, code]) => code === 'c' && openIntervals.some(([a, b]) => t > a + GUARD_TO_ARRIVAL_MS && t < b));
    expect(confirmsWhileOpen).toEqual([]);
  });
});
