/**
 * The gate client's reading of the Redis clock, over a scripted Redis. Each fetch only brackets
 * the script's run between its send and its answer, so: a fetch Redis sat on before running the
 * script must not make its own slots come due early, and an answer this process handled late
 * must not hide the lateness of its slots from the late-send guard.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { PermitGate } from './gate.ts';

const TRUE_OFFSET_MS = 5_000_000; // Redis clock − local clock
const real = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A scripted Redis: each fetch grants one slot `aheadMs` after the script ran (Redis clock). */
function scripted(now: () => number) {
  const o = { aheadMs: 50, holdBeforeMs: 0, holdAfterMs: 0 };
  const fetches: { ranAt: number; slotAt: number }[] = [];
  const fake = {
    async eval(): Promise<string> {
      return '# Replication\r\nrole:master\r\nmaster_replid:8e1d0c3b7a\r\n';
    },
    async sluiceGateAcquire(): Promise<number[]> {
      if (o.holdBeforeMs > 0) await sleep(o.holdBeforeMs); // Redis busy before the script runs
      const ranAt = now();
      const ahead = o.aheadMs;
      fetches.push({ ranAt, slotAt: ranAt + ahead });
      const serverMs = ranAt + TRUE_OFFSET_MS;
      if (o.holdAfterMs > 0) await sleep(o.holdAfterMs); // the answer handled late
      // [Redis now µs, margin µs, retry-at µs, slot µs…]; margin 20 ms with a 5 ms minimum.
      return [serverMs * 1000, 20_000, 0, (serverMs + ahead) * 1000];
    },
  };
  return { o, fetches, redis: fake as unknown as Redis };
}

function gateOn(redis: Redis, now: () => number): PermitGate {
  return new PermitGate(redis, {
    prefix: 'unit', limit: 500, windowMs: 1_000, marginMinMs: 5, marginMaxMs: 60, horizonMs: 40, priorityHorizonMs: 120, batchMax: 1, now,
  });
}

describe('PermitGate clock', () => {
  it('never hands a slot out before its Redis time, even off a fetch Redis sat on for 40 ms', async () => {
    let shift = 0;
    const now = (): number => real() + shift;
    const s = scripted(now);
    const gate = gateOn(s.redis, now);
    try {
      // A quick fetch sets the clock bounds; then more than 10 s pass, and the next fetch is slow.
      const first = await gate.acquire('low');
      expect(now()).toBeGreaterThanOrEqual(s.fetches[0]!.slotAt);
      expect(first.slotMs).toBeLessThanOrEqual(s.fetches[0]!.slotAt);
      shift += 11_000;
      s.o.holdBeforeMs = 40;
      const second = await gate.acquire('low');
      const handedAt = now();
      // Not before its slot (50 ms after the script ran, on the Redis clock).
      const { slotAt } = s.fetches[1]!;
      expect(handedAt).toBeGreaterThanOrEqual(slotAt);
      // Nor was it held back by the 40 ms Redis sat on the fetch (the bound leaves a loaded
      // machine's timers some room).
      expect(handedAt - slotAt).toBeLessThan(35);
      // Its lateness counts from no later than the true slot. (From up to the fetch's round trip
      // earlier: with the last quick fetch over 10 s old, the slow one alone bounds the clock, and
      // the guard then counts those 40 ms as lateness.)
      expect(second.slotMs).toBeLessThanOrEqual(slotAt);
    } finally {
      gate.close();
    }
  });

  it('counts the lateness of an answer handled late: a slot already past what the margin covers is not handed out', async () => {
    const s = scripted(real);
    const gate = gateOn(s.redis, real);
    try {
      await gate.acquire('low'); // sets the clock bounds
      // The script grants a slot 10 ms ahead, but its answer is handled 40 ms after it ran: the
      // slot is 30 ms gone, past the 15 ms the margin allows (20 − 5). It must not go out as
      // if it were on time; the next fetch (answered at once) gives the permit.
      s.o.aheadMs = 10;
      s.o.holdAfterMs = 40;
      const p = gate.acquire('low');
      await sleep(5);
      s.o.holdAfterMs = 0;
      s.o.aheadMs = 50;
      const permit = await p;
      const handedAt = real();
      // The late one was dropped, and a later fetch's slot went out, not before it was due.
      expect(s.fetches.length).toBeGreaterThanOrEqual(3);
      const from = s.fetches.reduce((a, f) => (Math.abs(f.slotAt - permit.slotMs) < Math.abs(a.slotAt - permit.slotMs) ? f : a));
      expect(from).not.toBe(s.fetches[1]);
      expect(handedAt).toBeGreaterThanOrEqual(from.slotAt);
      // And the guard measures its lateness from no later than its true slot.
      expect(permit.slotMs).toBeLessThanOrEqual(from.slotAt);
    } finally {
      gate.close();
    }
  });

  it('tells a caller its slot as soon as it is assigned, before it comes due, and hands that same slot out at it', async () => {
    const s = scripted(real);
    const gate = gateOn(s.redis, real);
    try {
      await gate.acquire('low'); // sets the clock bounds
      s.o.aheadMs = 200;
      const told: { at: number; slotMs: number }[] = [];
      const permit = await gate.acquire('low', (p) => told.push({ at: real(), slotMs: p.slotMs }));
      const handedAt = real();
      const { slotAt } = s.fetches.at(-1)!;
      // Told once, at the fetch (a long while before the slot), of the slot it was then handed.
      expect(told).toHaveLength(1);
      expect(told[0]!.slotMs).toBe(permit.slotMs);
      expect(told[0]!.at).toBeLessThan(slotAt - 100);
      expect(handedAt).toBeGreaterThanOrEqual(slotAt);
    } finally {
      gate.close();
    }
  });
});

describe('PermitGate pace', () => {
  /** A scripted Redis granting each fetch's slots 2 ms apart, from 5 ms after the script ran. */
  function paced(now: () => number) {
    let next = 0;
    const slots: number[] = [];
    const fake = {
      async eval(): Promise<string> {
        return '# Replication\r\nrole:master\r\nmaster_replid:8e1d0c3b7a\r\n';
      },
      async sluiceGateAcquire(...args: (string | number)[]): Promise<number[]> {
        const serverMs = now();
        next = Math.max(next, serverMs + 5);
        const out = [serverMs * 1000, 20_000, 0];
        for (let i = 0; i < Number(args[4]); i++, next += 2) {
          slots.push(next);
          out.push(next * 1000);
        }
        return out;
      },
    };
    return { slots, redis: fake as unknown as Redis };
  }

  for (const lastMs of ['turns', 'sleep'] as const) {
    it(`hands 300 slots 2 ms apart out at their time, never before (last millisecond: ${lastMs})`, async () => {
      const s = paced(real);
      const gate = new PermitGate(s.redis, {
        prefix: 'unit', limit: 500, windowMs: 1_000, marginMinMs: 5, marginMaxMs: 60, horizonMs: 40, priorityHorizonMs: 120, batchMax: 10, now: real, lastMs,
      });
      const early: number[] = [];
      const late: number[] = [];
      await Promise.all(Array.from({ length: 300 }, async () => {
        const p = await gate.acquire('low');
        const at = real();
        // The scripted clock is the local one: slotMs is the slot itself.
        if (at < p.slotMs) early.push(p.slotMs - at);
        late.push(at - p.slotMs);
      }));
      gate.close();
      expect(early).toEqual([]);
      expect(gate.stats.granted).toBe(300);
      late.sort((a, b) => a - b);
      // Generous for a shared machine: a slot waits for a timer or a sleep, not a fetch.
      expect(late[Math.floor(late.length / 2)]).toBeLessThan(5);
      if (lastMs === 'sleep') {
        // One look for the timer, perhaps one for the sleep and one after the sends: no busy wait.
        expect(gate.stats.looks / gate.stats.granted).toBeLessThan(4);
      } else {
        // The main thread's way spins on the event loop's turns through the last millisecond.
        expect(gate.stats.looks / gate.stats.granted).toBeGreaterThan(4);
      }
    });
  }
});
