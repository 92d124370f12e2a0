/**
 * The gate client's reading of the Redis clock, over a scripted Redis: a fetch that Redis held
 * before running the script must not make its own slots come due early on this process's clock.
 */
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { PermitGate } from './gate.ts';

const TRUE_OFFSET_MS = 5_000_000; // Redis clock − local clock
const real = (): number => performance.timeOrigin + performance.now();

describe('PermitGate clock', () => {
  it('never schedules a slot before its Redis time, even off a fetch Redis sat on for 40 ms', async () => {
    let shift = 0;
    const now = (): number => real() + shift;
    let holdMs = 0;
    const fetches: { t0: number; ranAt: number }[] = [];
    const fake = {
      // The script's answer: [Redis now µs, margin µs, retry-at µs, slot µs…], one slot 50 ms ahead.
      async sluiceGateAcquire(): Promise<number[]> {
        const t0 = now();
        if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
        const ranAt = now();
        fetches.push({ t0, ranAt });
        const serverMs = ranAt + TRUE_OFFSET_MS;
        return [serverMs * 1000, 20_000, 0, (serverMs + 50) * 1000];
      },
    };
    const gate = new PermitGate(fake as unknown as Redis, {
      prefix: 'unit', limit: 500, windowMs: 1_000, marginMinMs: 5, marginMaxMs: 60, horizonMs: 40, priorityHorizonMs: 120, batchMax: 1, now,
    });
    try {
      // A quick fetch sets the offset; then more than 10 s pass, and the next fetch is slow.
      const first = await gate.acquire('low');
      expect(first.slotMs - (fetches[0]!.ranAt + 50)).toBeGreaterThanOrEqual(-1);
      shift += 11_000;
      holdMs = 40;
      const second = await gate.acquire('low');
      // Its slot is 50 ms after the script ran, on the Redis clock: on ours, no earlier than that.
      const dueAt = fetches[1]!.ranAt + 50;
      expect(second.slotMs).toBeGreaterThanOrEqual(dueAt - 1);
      // And not much later either: the floor costs at most the reply's way back.
      expect(second.slotMs - dueAt).toBeLessThan(15);
    } finally {
      gate.close();
    }
  });
});
