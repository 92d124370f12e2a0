/**
 * A Redis connection that hangs (open, but silent) is dropped and made again within seconds, and
 * what was waiting on it is answered, rather than waiting for ever. Real Redis behind a TCP proxy
 * that stops passing bytes without closing anything.
 */
import { parseSentinels } from '@sluice/config';
import { startSentinelGroup, startTcpProxy, type TcpProxy } from '@sluice/test-support';
import { afterEach, describe, expect, it } from 'vitest';
import { connectRedis, type Redis } from './redis.ts';

const REDIS_PORT = Number(new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379').port || 6379);
let proxy: TcpProxy | null = null;
let redis: Redis | null = null;
afterEach(async () => {
  redis?.disconnect();
  await proxy?.close();
  proxy = null;
  redis = null;
});

/** Resolves with the value, or with 'stuck' after `ms`. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'stuck'> => Promise.race([p, new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), ms).unref())]);

describe('the hung-connection watchdog', () => {
  it('drops a connection that stopped answering, reconnects, and answers what was waiting', async () => {
    proxy = await startTcpProxy(REDIS_PORT);
    const hangs: number[] = [];
    redis = connectRedis(`redis://127.0.0.1:${proxy.port}`, {}, { hangMs: 800, onHang: (ms) => hangs.push(ms) });
    redis.on('error', () => undefined);
    const key = `test-watchdog-${Date.now()}`;
    expect(await redis.set(key, 'before', 'PX', 60_000)).toBe('OK');
    proxy.hang();
    const t0 = Date.now();
    // Asked on the silent connection: answered after the watchdog's reconnect.
    expect(await within(redis.get(key), 10_000)).toBe('before');
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(hangs).toEqual([800]);
    await redis.del(key);
  });

  it('leaves a connection alone when it is off (hangMs 0): the command waits', async () => {
    proxy = await startTcpProxy(REDIS_PORT);
    redis = connectRedis(`redis://127.0.0.1:${proxy.port}`, {}, { hangMs: 0 });
    redis.on('error', () => undefined);
    expect(await redis.ping()).toBe('PONG');
    proxy.hang();
    expect(await within(redis.ping(), 2_500)).toBe('stuck');
  });
});

describe('the watchdog across a reconnect through Sentinel', () => {
  it('never ends a connection that is already being made again: it comes back once the sentinels do', async () => {
    const group = await startSentinelGroup({ replicas: 0, sentinels: 1 });
    try {
      const target = { kind: 'sentinel' as const, sentinels: parseSentinels(group.sentinelList), name: group.name, tls: false };
      redis = connectRedis(target, {}, { hangMs: 1_500 });
      redis.on('error', () => undefined);
      expect(await redis.set('test-watchdog-sentinel', '1')).toBe('OK');
      const [primary] = group.nodes;
      // The primary stops answering, with the watchdog's PING out; the sentinels go away; then the
      // primary dies, so the client is asking sentinels that do not answer when the PING's time is up.
      primary!.child.kill('SIGSTOP');
      // The watchdog's PING goes out on its next round (every hangMs / 2) and gets no answer.
      await new Promise((r) => setTimeout(r, 1_000));
      await group.sentinels[0]!.kill9();
      await primary!.kill9();
      await new Promise((r) => setTimeout(r, 2_500));
      expect(redis.status).not.toBe('end');
      await primary!.restart();
      await group.sentinels[0]!.restart();
      expect(await within(redis.set('test-watchdog-sentinel', '2'), 15_000)).toBe('OK');
    } finally {
      redis?.disconnect();
      redis = null;
      await group.stop();
    }
  });

  it('a Sentinel client told to drop its connection while it asks the sentinels for the primary comes back, not ended for good', async () => {
    // What ioredis's failover detector does when the sentinels announce the new primary while the
    // client is already reconnecting after the old one died: it ends such a client for good
    // ("Connection is closed." to every command after), unless the client is connected again.
    const group = await startSentinelGroup({ replicas: 0, sentinels: 1 });
    try {
      const target = { kind: 'sentinel' as const, sentinels: parseSentinels(group.sentinelList), name: group.name, tls: false };
      redis = connectRedis(target, {}, { hangMs: 0 });
      redis.on('error', () => undefined);
      expect(await redis.set('test-failover-detector', '1')).toBe('OK');
      const connector = (redis as unknown as { connector: { disconnect(): void } }).connector;
      const told = new Promise<void>((resolve) => {
        redis!.once('connecting', () => {
          connector.disconnect();
          resolve();
        });
      });
      redis.disconnect(true);
      await told;
      // What was queued at that moment fails once (ioredis flushes it); what follows is answered.
      await expect.poll(() => redis!.set('test-failover-detector', '2').catch((e: Error) => e.message), { timeout: 15_000, interval: 100 }).toBe('OK');
      expect(redis.status).toBe('ready');
      // A client closed on purpose stays closed.
      redis.disconnect();
      await new Promise((r) => setTimeout(r, 500));
      expect(redis.status).toBe('end');
    } finally {
      redis?.disconnect();
      redis = null;
      await group.stop();
    }
  });
});
