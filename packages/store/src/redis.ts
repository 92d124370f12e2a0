/** Redis connections. BullMQ workers need `maxRetriesPerRequest: null`; so does a fail-closed gate. */
import { Redis, type RedisOptions } from 'ioredis';

/** A Redis connection as Sluice uses one (auto-pipelining on unless asked otherwise). */
export function connectRedis(url: string, opts: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableAutoPipelining: true,
    // Reconnect forever with a small cap: Sluice fails closed while Redis is away, then resumes.
    retryStrategy: (n) => Math.min(50 * n, 1_000),
    ...opts,
  });
}

/** ioredis's client type, for the callers of this package. */
export type { Redis };

/** Whether a Redis answers PING at `url` now (one try, no retries). */
export async function redisAnswers(url: string, connectTimeoutMs = 1_000): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: connectTimeoutMs });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}
