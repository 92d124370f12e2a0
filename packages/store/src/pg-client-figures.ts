/**
 * What each worker process tells the dashboard about its PG client: the read timeout in force per
 * call type and the mean time a call held its connection over the last interval. Written by the
 * worker every {@link PG_CLIENT_FIGURES_EVERY_MS} into one hash (a field per process), read by the
 * API's dashboard in its one snapshot round trip; entries of processes that stopped writing are
 * skipped by readers and pruned by writers.
 */
import type { PgCall } from '@sluice/domain';
import type { Redis } from 'ioredis';
import type { Keys } from './keys.ts';

/** How often each worker writes its figures. */
export const PG_CLIENT_FIGURES_EVERY_MS = 2_000;
/** An entry older than this is a process that is gone. */
const STALE_MS = 10_000;

/** One worker process's PG client figures. */
export interface PgClientFigures {
  /** When written (ms epoch, the writer's clock). */
  at: number;
  /** The read timeout in force (ms) per call type. */
  readTimeoutMs: Record<PgCall, number>;
  /** Mean connection hold (ms) per call type over the last interval; null without calls. */
  holdMs: Record<PgCall, number | null>;
  /** Connections of the process's share in use. */
  inFlight: number;
}

/** Writes one process's figures and drops entries of processes that stopped writing. */
export async function publishPgClientFigures(redis: Redis, keys: Keys, processId: string, figures: PgClientFigures): Promise<void> {
  const all = await redis.hgetall(keys.pgClients);
  const stale = Object.entries(all)
    .filter(([id, v]) => id !== processId && (readFigures(v)?.at ?? 0) < figures.at - 6 * STALE_MS)
    .map(([id]) => id);
  const pipe = redis.pipeline().hset(keys.pgClients, processId, JSON.stringify(figures));
  if (stale.length > 0) pipe.hdel(keys.pgClients, ...stale);
  await pipe.exec();
}

function readFigures(text: string): PgClientFigures | null {
  try {
    const f = JSON.parse(text) as PgClientFigures;
    return typeof f.at === 'number' ? f : null;
  } catch {
    return null;
  }
}

/** The live processes' figures from the hash, as of `nowMs`. */
export function livePgClientFigures(hash: Record<string, string>, nowMs: number): PgClientFigures[] {
  return Object.values(hash)
    .map(readFigures)
    .filter((f): f is PgClientFigures => f !== null && nowMs - f.at <= STALE_MS);
}
