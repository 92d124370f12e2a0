/** The shared circuit breaker's bookkeeping (breaker-record.lua), over real Redis. */
import { describe, expect, it } from 'vitest';
import { RECORD_BATCH_MS } from './transitions.ts';
import { useTestStore } from './test-support.ts';

// Opens on 3 consecutive failures (the rate rule is out of reach), stays open for a minute
// (no half-open during the test), and closes after 2 successful probes.
const ctx = useTestStore({ consecutiveFailures: 3, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 100, closeAfter: 2 });

const breaker = async () => {
  const [state, openedAt, openUntil, probesOk, reason] = await ctx.redis.hmget(ctx.store.keys.breaker, 'state', 'openedAt', 'openUntil', 'probesOk', 'reason');
  return { state, openedAt: Number(openedAt), openUntil: Number(openUntil), probesOk: Number(probesOk ?? 0), reason };
};

/** Three consecutive failures open it; returns its state then. */
async function openIt() {
  for (let i = 0; i < 3; i++) await ctx.t.record({ call: 'confirm', outcome: 'in_doubt', pgFailed: true, sent: 'now' });
  const opened = await breaker();
  expect(opened.state).toBe('open');
  return opened;
}

/** Two answered probes written after it opened close it (for the next test, too). */
async function closeIt(openedAt: number) {
  expect(await ctx.t.record({ call: 'inquire', outcome: 'approved', pgFailed: false, httpStatus: 200, sent: openedAt + 1 })).toBe('open');
  expect((await breaker()).probesOk).toBe(1);
  expect(await ctx.t.record({ call: 'inquire', outcome: 'approved', pgFailed: false, httpStatus: 200, sent: openedAt + 2 })).toBe('closed');
}

describe('the circuit breaker', () => {
  it('judges results recorded together one by one, in order, in one script call', async () => {
    // Redis's own view of the commands: the breaker's scripts for this test's keys.
    const monitor = await ctx.redis.duplicate().monitor();
    let scripts = 0;
    monitor.on('monitor', (_time: string, args: string[]) => {
      // EVAL the first time (the script not yet cached), EVALSHA after.
      if (/^eval(sha)?$/i.test(args[0] ?? '') && args.includes(ctx.store.keys.breaker)) scripts++;
    });
    const fail = { call: 'confirm', outcome: 'in_doubt', pgFailed: true, sent: 'now' } as const;
    const ok = { call: 'confirm', outcome: 'approved', pgFailed: false, httpStatus: 200, sent: 'now' } as const;
    try {
      // Two failures, a success (which clears the count), then three failures: only the last opens it.
      const states = await Promise.all([fail, fail, ok, fail, fail, fail].map((c, i) => ctx.t.record({ ...c, paymentId: `pay_${i}` })));
      expect(states).toEqual(['closed', 'closed', 'closed', 'closed', 'closed', 'open']);
      await expect.poll(() => scripts).toBe(1);
      // Each call in the books' stream, in the order recorded.
      const entries = await ctx.redis.xrange(ctx.store.keys.books, '-', '+');
      const calls = entries.map(([, f]) => f).filter((f) => f[f.indexOf('k') + 1] === 'c');
      expect(calls.map((f) => f[f.indexOf('id') + 1])).toEqual(['pay_0', 'pay_1', 'pay_2', 'pay_3', 'pay_4', 'pay_5']);
      expect(await ctx.redis.hget(ctx.store.keys.counters, 'pg:confirm:in_doubt')).toBe('5');

      // A flush sends what waits at once: no result waits for the batch's timer.
      const started = Date.now();
      const pending = ctx.t.record({ ...ok, sent: 'unsent', outcome: 'not_sent' });
      await ctx.t.flushRecords();
      expect(await pending).toBe('open');
      expect(Date.now() - started).toBeLessThan(RECORD_BATCH_MS);
      await expect.poll(() => scripts).toBe(2);
    } finally {
      monitor.disconnect();
    }
    await closeIt((await breaker()).openedAt);
  });

  it('while open, judges only calls written after it opened', async () => {
    const opened = await openIt();
    expect(opened).toMatchObject({ probesOk: 0, reason: '3 consecutive failures' });
    const before = opened.openedAt - 50;

    // Calls written before it opened: a late success does not count toward closing, and a late
    // timeout does not push the open spell back.
    await new Promise((r) => setTimeout(r, 5));
    expect(await ctx.t.record({ call: 'confirm', outcome: 'approved', pgFailed: false, httpStatus: 200, sent: before })).toBe('open');
    expect(await ctx.t.record({ call: 'confirm', outcome: 'in_doubt', pgFailed: true, sent: before })).toBe('open');
    expect(await breaker()).toMatchObject({ state: 'open', probesOk: 0, openedAt: opened.openedAt, openUntil: opened.openUntil });

    // Probes written since: two successes close it.
    await closeIt(opened.openedAt);
  });

  it('a call held back on our side (not sent, no PG failure) is neither a probe nor a failure', async () => {
    const opened = await openIt();
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 3; i++) expect(await ctx.t.record({ call: 'inquire', outcome: 'not_sent', pgFailed: false, sent: 'unsent' })).toBe('open');
    expect(await breaker()).toMatchObject({ state: 'open', probesOk: 0, openUntil: opened.openUntil });
    await closeIt(opened.openedAt);
  });

  it('a probe that fails, or finds the PG unreachable, opens it again', async () => {
    const opened = await openIt();
    await new Promise((r) => setTimeout(r, 5));
    expect(await ctx.t.record({ call: 'inquire', outcome: 'in_doubt', pgFailed: true, sent: opened.openedAt + 1 })).toBe('open');
    const again = await breaker();
    expect(again).toMatchObject({ state: 'open', reason: 'probe failed' });
    expect(again.openUntil).toBeGreaterThan(opened.openUntil);

    await new Promise((r) => setTimeout(r, 5));
    expect(await ctx.t.record({ call: 'inquire', outcome: 'not_sent', pgFailed: true, sent: 'unsent' })).toBe('open');
    expect((await breaker()).openUntil).toBeGreaterThan(again.openUntil);
  });
});
