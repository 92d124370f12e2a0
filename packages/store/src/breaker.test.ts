/** The shared circuit breaker's bookkeeping (breaker-record.lua), over real Redis. */
import { describe, expect, it } from 'vitest';
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
