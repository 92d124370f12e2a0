/**
 * The lifecycle table (packages/domain PHASE_MOVES) is the one source of the phase moves: the
 * Lua scripts take it as generated constants (includes/lifecycle.lua), which must not be stale,
 * and every (phase, move) pair is walked against the real scripts on Redis: each move in the
 * table is applied, each one outside it is refused and changes nothing.
 */
import { lifecycleLua, PHASE_MOVES, PHASES, type Phase, type Step } from '@sluice/domain';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useTestStore } from './test-support.ts';

const ctx = useTestStore({ consecutiveFailures: 1_000, failureRate: 1, minCalls: 1_000, windowMs: 10_000, openMs: 60_000, probeIntervalMs: 5_000, closeAfter: 2 });

let n = 0;
async function paymentIn(phase: Phase): Promise<string> {
  const id = `pay_life_${++n}`;
  const status = phase === 'queued' ? 'QUEUED' : phase === 'final' ? 'APPROVED' : 'PROCESSING';
  await ctx.redis.hset(ctx.store.keys.payment(id), 'id', id, 'phase', phase, 'status', status, 'paymentKey', `pk_${id}`, 'orderId', `order-${id}`, 'amount', 1_000, 'attempts', 0, 'createdAt', Date.now());
  return id;
}
const phaseOf = async (id: string) => ctx.redis.hget(ctx.store.keys.payment(id), 'phase');

/** The steps apply-step takes, and the phase each moves to. */
const STEPS: [Step, Phase][] = [
  [{ do: 'finalize', status: 'APPROVED' }, 'final'],
  [{ do: 'inquire', delayMs: 0, answered: false }, 'inquiring'],
  [{ do: 'reconfirm' }, 'confirming'],
  [{ do: 'cancel' }, 'canceling'],
];

/** The PG calls the guard lets out, and the phase each moves to. */
const CALLS: ['confirm' | 'inquire' | 'cancel', Phase][] = [
  ['confirm', 'confirming'],
  ['inquire', 'inquiring'],
  ['cancel', 'canceling'],
];

describe('the lifecycle table', () => {
  it('the Lua constants are the domain table as generated now (run `npm run gen:lua` if not)', () => {
    const committed = readFileSync(new URL('./lua/includes/lifecycle.lua', import.meta.url), 'utf8');
    expect(committed).toBe(lifecycleLua());
  });

  it('apply-step makes every move in the table and refuses every other (phase, step) pair', async () => {
    const seen: string[] = [];
    for (const from of PHASES) {
      for (const [step, to] of STEPS) {
        const id = await paymentIn(from);
        const allowed = PHASE_MOVES[from].includes(to);
        const result = await ctx.t.apply({ paymentId: id, expected: from, step, event: { test: true } });
        expect(result, `${from} --${step.do}--> ${to}`).toBe(allowed ? to : null);
        expect(await phaseOf(id), `${from} --${step.do}-->`).toBe(allowed ? to : from);
        seen.push(`${from}>${to}:${allowed}`);
      }
    }
    // Every pair was walked, refused ones counted.
    expect(seen).toHaveLength(PHASES.length * STEPS.length);
    const refused = seen.filter((s) => s.endsWith(':false')).length;
    expect(refused).toBeGreaterThan(0);
    expect(Number((await ctx.store.counters())['lifecycle:refused'])).toBe(refused);
  });

  it('the phase guard lets a call out only along a move in the table', async () => {
    for (const from of PHASES) {
      for (const [call, to] of CALLS) {
        const id = await paymentIn(from);
        const r = await ctx.t.guard({ paymentId: id, call, allowed: [from], to });
        const allowed = PHASE_MOVES[from].includes(to);
        expect(r.ok, `${call}: ${from} → ${to}`).toBe(allowed);
        expect(await phaseOf(id)).toBe(allowed ? to : from);
      }
    }
  });
});
