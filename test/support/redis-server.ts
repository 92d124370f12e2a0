/**
 * A private redis-server for tests that kill Redis: AOF with fsync always in a temp directory, so
 * a restart comes back with every acknowledged write.
 */
import { startRedisServer, type RedisServer } from '@sluice/test-support';

export type PrivateRedis = RedisServer;

/** What every data node of the fault tests runs with: AOF fsynced at every write, no eviction. */
export const PRIVATE_REDIS_ARGS = [['appendonly', 'yes'], ['appendfsync', 'always'], ['maxmemory-policy', 'noeviction']];

export function startPrivateRedis(): Promise<PrivateRedis> {
  return startRedisServer(PRIVATE_REDIS_ARGS);
}
