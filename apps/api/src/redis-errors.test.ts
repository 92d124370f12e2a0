/**
 * Redis failing under a request is a 503 with Retry-After, never a 500: a write refused for now
 * (a failover's NOREPLICAS), or the connection closing under a pipeline that was partly answered
 * (ioredis aborts the rest; whether it ran is unknown, and the retry with the same key decides).
 * The errors are real ones from the local Redis, passed through the API's error handler.
 */
import express from 'express';
import { Redis } from 'ioredis';
import pino from 'pino';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { startRedisCluster, startRedisServer, type RedisServer } from '@sluice/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorHandler } from './errors.ts';

let server: RedisServer;
beforeAll(async () => {
  // A server of its own: the second test asks it for replicas it does not have.
  server = await startRedisServer();
});
afterAll(async () => {
  await server?.stop();
});

/** A pipeline whose first command was answered, then the server drops the connection: ioredis aborts the rest. */
async function abortedCommand(): Promise<Error> {
  const r = new Redis(server.url, { maxRetriesPerRequest: null });
  r.on('error', () => undefined);
  try {
    const id = await r.client('ID');
    const key = `test-abort-${randomUUID()}`;
    const answered = r.pipeline().set(key, '1', 'PX', 10_000).blpop(`${key}:list`, 5).get(key).exec();
    await new Promise((res) => setTimeout(res, 200));
    await server.client().client('KILL', 'ID', String(id));
    const results = (await answered) ?? [];
    return (results[1]?.[0] as Error | null) ?? new Error('the command was answered');
  } finally {
    r.disconnect();
  }
}

async function answerTo(err: Error): Promise<{ status: number; retryAfter: string | null; body: { code: string } }> {
  const app = express();
  app.get('/x', () => {
    throw err;
  });
  app.use(errorHandler(pino({ level: 'silent' })));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { code: string } };
  } finally {
    server.close();
  }
}

describe('Redis errors under a request', () => {
  it('a command aborted by the connection closing under its pipeline is 503 REDIS_UNAVAILABLE with Retry-After', async () => {
    const err = await abortedCommand();
    expect(err.name).toBe('AbortError');
    expect(await answerTo(err)).toEqual({ status: 503, retryAfter: '1', body: expect.objectContaining({ code: 'REDIS_UNAVAILABLE' }) });
  });

  it('a write refused by a primary without its replicas (NOREPLICAS) is the same 503', async () => {
    await server.client().config('SET', 'min-replicas-to-write', '1');
    const err = await server.client().set(`test-norepl-${randomUUID()}`, '1').then(() => new Error('written'), (e: Error) => e);
    expect(err.message).toMatch(/^NOREPLICAS/);
    expect(await answerTo(err)).toMatchObject({ status: 503, retryAfter: '1', body: { code: 'REDIS_UNAVAILABLE' } });
  });

  it('a command sent to a cluster node that does not serve its slot (MOVED) is the same 503', async () => {
    const cluster = await startRedisCluster({ primaries: 3 });
    try {
      const key = `test-moved-${randomUUID()}`;
      const owner = await cluster.ownerOf(await cluster.slotOf(key));
      const other = cluster.nodes.find((n) => n.port !== owner)!;
      const err = await other.client().set(key, '1').then(() => new Error('written'), (e: Error) => e);
      expect(err.message).toMatch(/^MOVED/);
      expect(await answerTo(err)).toMatchObject({ status: 503, retryAfter: '1', body: { code: 'REDIS_UNAVAILABLE' } });
    } finally {
      await cluster.stop();
    }
  });

  it('any other error is a 500', async () => {
    expect((await answerTo(new Error('ERR something else'))).status).toBe(500);
  });
});
