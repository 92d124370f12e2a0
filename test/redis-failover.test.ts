/**
 * Redis beyond one node (issue "Outgrowing one Redis"): the permit gate across a failover, and the
 * connections following a Sentinel group's primary. Real redis-server processes on free ports.
 *
 * A promoted replica holds the gate's state as it was replicated: present, so no cold start, but
 * maybe without the last slots the old primary granted. Granting from it at once could put more
 * than the limit in one PG window; the gate must wait out one window plus its largest margin.
 */
import { connectRedis } from '@sluice/store';
import { PermitGate } from '@sluice/permit-gate';
import { startRedisServer, startSentinelGroup, type RedisServer, type SentinelGroup } from '@sluice/test-support';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';

const LIMIT = 20;
const WINDOW_MS = 1_000;
const MAX_MARGIN_MS = 60;

function gateOn(redis: Redis, prefix: string): PermitGate {
  return new PermitGate(redis, {
    prefix, limit: LIMIT, windowMs: WINDOW_MS, marginMinMs: 5, marginMaxMs: MAX_MARGIN_MS, horizonMs: 200, priorityHorizonMs: 200, batchMax: 5,
  });
}

/** Keeps `callers` waiting at the gate, as a backlogged worker does, recording each slot handed out. */
function saturate(gate: PermitGate, slots: number[], callers = 8): { stop(): Promise<void> } {
  let running = true;
  const loops = Array.from({ length: callers }, async () => {
    while (running) {
      try {
        const p = await gate.acquire('low');
        slots.push(p.slotMs);
      } catch {
        return; // closed
      }
    }
  });
  return {
    async stop() {
      running = false;
      gate.close();
      await Promise.all(loops);
    },
  };
}

/** The most slots in any PG window (t − window, t]. */
function maxInWindow(slots: number[]): number {
  const s = [...slots].sort((a, b) => a - b);
  let best = 0;
  for (let lo = 0, hi = 0; hi < s.length; hi++) {
    while (s[hi]! - s[lo]! >= WINDOW_MS) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe('the permit gate across a failover', () => {
  it('never puts more than the limit in a PG window when a replica that missed the last slots is promoted', async () => {
    const primary = await startRedisServer();
    cleanups.push(() => primary.stop());
    const replica = await startRedisServer([['replicaof', '127.0.0.1', String(primary.port)]]);
    cleanups.push(() => replica.stop());
    const admin = replica.client();
    await expect.poll(async () => /master_link_status:up/.test(await admin.info('replication')), { timeout: 10_000 }).toBe(true);

    const prefix = 'failover';
    const onPrimary = connectRedis(primary.url);
    onPrimary.on('error', () => undefined);
    cleanups.push(async () => onPrimary.disconnect());
    const onNew = connectRedis(replica.url);
    onNew.on('error', () => undefined);
    cleanups.push(async () => onNew.disconnect());
    const oldSlots: number[] = [];
    const newSlots: number[] = [];
    const before = saturate(gateOn(onPrimary, prefix), oldSlots);
    await sleep(2_500);
    // The replica is promoted, and processes that got there start granting from it, while those
    // still on the old primary grant on for a while: what they grant never reaches the new one,
    // as when replication lags a crash.
    await admin.call('REPLICAOF', 'NO', 'ONE');
    const promotedAt = Date.now();
    const after = saturate(gateOn(onNew, prefix), newSlots);
    await sleep(800);
    await before.stop();
    await primary.kill9();
    await sleep(2_000);
    await after.stop();
    const slots = [...oldSlots, ...newSlots];
    const fromNew = newSlots;
    expect(fromNew.length).toBeGreaterThan(LIMIT);
    // The new primary waited out a window and the largest margin before its first slot…
    expect(Math.min(...fromNew)).toBeGreaterThanOrEqual(promotedAt + WINDOW_MS);
    // …so that no PG window holds more than the limit, the lost slots included.
    expect(maxInWindow(slots)).toBeLessThanOrEqual(LIMIT);
  });
});

describe('Sentinel', () => {
  let group: SentinelGroup | null = null;
  afterEach(async () => {
    await group?.stop();
    group = null;
  });

  it('follows the primary through a kill -9, and the gate pauses on the new one', async () => {
    group = await startSentinelGroup({ replicas: 1, sentinels: 3, downAfterMs: 1_000 });
    const target = { kind: 'sentinel' as const, sentinels: group.sentinelList.split(',').map((a) => ({ host: '127.0.0.1', port: Number(a.split(':')[1]) })), name: group.name, tls: false };
    const redis = connectRedis(target);
    redis.on('error', () => undefined);
    cleanups.push(async () => redis.disconnect());
    const readyAt: number[] = [];
    redis.on('ready', () => readyAt.push(Date.now()));
    await redis.set('k', 'before');
    const firstPort = await group.primaryPort();
    expect(redis.stream?.remotePort).toBe(firstPort);

    const slots: number[] = [];
    const load = saturate(gateOn(redis, 'sentinel'), slots);
    await sleep(1_500);
    const killedAt = Date.now();
    const granted = slots.length;
    await group.nodes.find((n: RedisServer) => n.port === firstPort)!.kill9();
    const newPort = await group.waitForFailover(firstPort, 30_000);

    // Writes resume on the promoted replica through the same client, without a restart.
    await expect.poll(() => redis.set('k', 'after').then(() => redis.stream?.remotePort), { timeout: 20_000 }).toBe(newPort);
    expect(await redis.get('k')).toBe('after');
    await sleep(2_500);
    await load.stop();

    const reconnected = readyAt.filter((t) => t > killedAt);
    expect(reconnected.length).toBeGreaterThan(0);
    // The old primary granted nothing past its kill plus the horizon (200 ms).
    const fromNew = slots.slice(granted).filter((s) => s > killedAt + 250);
    expect(fromNew.length).toBeGreaterThan(LIMIT);
    // Its first slot on the new primary waited a full window after the client got there.
    expect(Math.min(...fromNew)).toBeGreaterThanOrEqual(reconnected[0]! + WINDOW_MS - 5);
    expect(maxInWindow(slots)).toBeLessThanOrEqual(LIMIT);
  });
});
