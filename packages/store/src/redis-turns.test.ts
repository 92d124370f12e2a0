/**
 * Sluice's connections write the commands of one event-loop turn together (redis.ts,
 * writeTurnByTurn), over real Redis: one socket write for a turn's commands, each answered in
 * order, a command alone answered too, and commands sent while the connection is down written
 * once it is back; and a connection that asked for no batching writes each command at once.
 */
import { randomUUID } from 'node:crypto';
import { Redis as IoRedis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { connectRedis, type Redis } from './redis.ts';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `test-${randomUUID()}`;
const open: Redis[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) await r.quit().catch(() => r.disconnect());
});
afterAll(async () => {
  const r = connectRedis(REDIS_URL);
  const keys = await r.keys(`${prefix}:*`);
  if (keys.length) await r.unlink(...keys);
  await r.quit();
});

async function connect(opts: { enableAutoPipelining?: boolean } = {}): Promise<Redis> {
  const r = connectRedis(REDIS_URL, opts, { hangMs: 0 });
  open.push(r);
  await r.ping();
  return r;
}

/** Counts the socket's writes to the kernel (each `_write` or `_writev` is one). */
function countWrites(r: Redis): () => number {
  const socket = r.stream as unknown as { _write: (...a: unknown[]) => void; _writev?: (...a: unknown[]) => void };
  let n = 0;
  const write = socket._write.bind(socket);
  socket._write = (...a) => {
    n++;
    write(...a);
  };
  const writev = socket._writev?.bind(socket);
  if (writev) {
    socket._writev = (...a) => {
      n++;
      writev(...a);
    };
  }
  return () => n;
}

describe('a connection that writes turn by turn', () => {
  it("writes one turn's commands in one write, and answers each in order", async () => {
    const r = await connect();
    const writes = countWrites(r);
    const sets = Array.from({ length: 50 }, (_, i) => r.set(`${prefix}:a${i}`, String(i)));
    const gets = Array.from({ length: 50 }, (_, i) => r.get(`${prefix}:a${i}`));
    expect(await Promise.all(sets)).toEqual(sets.map(() => 'OK'));
    expect(await Promise.all(gets)).toEqual(gets.map((_, i) => String(i)));
    expect(writes()).toBe(1);
  });

  it('writes each command at once on a connection that asked for no batching (BullMQ, blocking readers)', async () => {
    const r = await connect({ enableAutoPipelining: false });
    expect(r.options.enableAutoPipelining).toBe(false);
    const writes = countWrites(r);
    const sets = Array.from({ length: 50 }, (_, i) => r.set(`${prefix}:b${i}`, String(i)));
    // Written before the turn ends: nothing waits for the turn's other callbacks.
    expect(writes()).toBe(50);
    expect(await Promise.all(sets)).toEqual(sets.map(() => 'OK'));
  });

  it('never uses ioredis\'s auto-pipelining on one socket (it is for Cluster clients only)', async () => {
    const r = await connect({ enableAutoPipelining: true });
    expect(r.options.enableAutoPipelining).toBe(false);
    const writes = countWrites(r);
    await Promise.all(Array.from({ length: 50 }, (_, i) => r.set(`${prefix}:f${i}`, String(i))));
    expect(writes()).toBe(1);
  });

  it('is what spares the writes: a bare ioredis connection makes one per command', async () => {
    const r = new IoRedis(REDIS_URL);
    open.push(r);
    await r.ping();
    const writes = countWrites(r);
    await Promise.all(Array.from({ length: 50 }, (_, i) => r.set(`${prefix}:e${i}`, String(i))));
    expect(writes()).toBe(50);
  });

  it('answers a command sent alone, and the commands of the turns after it', async () => {
    const r = await connect();
    const writes = countWrites(r);
    expect(await r.set(`${prefix}:c`, '1')).toBe('OK');
    expect(await r.incr(`${prefix}:c`)).toBe(2);
    await new Promise((done) => setImmediate(done));
    expect(await r.get(`${prefix}:c`)).toBe('2');
    expect(writes()).toBe(3);
  });

  it('writes what was sent while the connection was down once it is back', async () => {
    const r = await connect();
    r.disconnect(true);
    const sent = Array.from({ length: 20 }, (_, i) => r.set(`${prefix}:d${i}`, String(i)));
    expect(await Promise.all(sent)).toEqual(sent.map(() => 'OK'));
    expect(await r.mget(Array.from({ length: 20 }, (_, i) => `${prefix}:d${i}`))).toEqual(sent.map((_, i) => String(i)));
  });
});
