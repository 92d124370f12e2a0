/**
 * What the bench reads from Redis directly: the backlog size, payment fields in bulk, memory, and
 * the clean-up of a run's keys. Reads are pipelined in chunks so that 60,000 payments cost a few
 * round trips, not 60,000.
 */
import { Redis } from 'ioredis';
import { keysAsWritten, sumCounters, type Keys } from '@sluice/store';

/** The Redis the bench uses (REDIS_URL, else the local one). */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A Redis connection for the bench's own reads. */
export function connect(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: 3 });
}


/** Size of the backlog: payments that are not final yet (in every shard). */
export async function openCount(redis: Redis, prefix: string): Promise<number> {
  const counts = await Promise.all((await keysAsWritten(redis, prefix)).shards.map((k) => redis.zcard(k.open)));
  return counts.reduce((a, b) => a + b, 0);
}

/** The counters, every shard's added up (as the dashboard reads them). */
export async function readCounters(redis: Redis, prefix: string): Promise<Record<string, number>> {
  return sumCounters(await Promise.all((await keysAsWritten(redis, prefix)).allCounters.map((k) => redis.hgetall(k))));
}

/** The payment fields the reports use. */
export const PAYMENT_FIELDS = ['status', 'paymentKey', 'pgCalls', 'inDoubtAt', 'createdAt', 'finalizedAt', 'attempts'] as const;
/** A payment's fields as the bench reads them. */
export type PaymentRow = { id: string } & Partial<Record<(typeof PAYMENT_FIELDS)[number], string>>;

const CHUNK = 2_000;

/** HMGET of {@link PAYMENT_FIELDS} for every id (missing hashes come back with no fields). */
export async function readPayments(redis: Redis, prefix: string, ids: readonly string[]): Promise<PaymentRow[]> {
  const keys = await keysAsWritten(redis, prefix);
  const byId = new Map<string, PaymentRow>();
  for (let i = 0; i < ids.length; i += CHUNK) {
    // One pipeline per shard: on a Redis Cluster a pipeline's keys must share a node.
    const groups = new Map<Keys, string[]>();
    for (const id of ids.slice(i, i + CHUNK)) {
      const k = keys.shardOf(id);
      const group = groups.get(k);
      if (group) group.push(id);
      else groups.set(k, [id]);
    }
    await Promise.all([...groups].map(async ([k, chunk]) => {
      const pipe = redis.pipeline();
      for (const id of chunk) pipe.hmget(k.payment(id), ...PAYMENT_FIELDS);
      const results = (await pipe.exec()) ?? [];
      chunk.forEach((id, j) => {
        const values = (results[j]?.[1] ?? []) as (string | null)[];
        const row: PaymentRow = { id };
        PAYMENT_FIELDS.forEach((f, n) => {
          const v = values[n];
          if (v !== null && v !== undefined) row[f] = v;
        });
        byId.set(id, row);
      });
    }));
  }
  return ids.map((id) => byId.get(id)!);
}

/** Every key matching a glob (SCAN, never KEYS: the Redis is shared with other work). */
export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 2_000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/** Deletes every key matching a glob (SCAN + UNLINK); returns how many went. */
export async function deleteMatching(redis: Redis, pattern: string): Promise<number> {
  const keys = await scanKeys(redis, pattern);
  for (let i = 0; i < keys.length; i += 1_000) await redis.unlink(...keys.slice(i, i + 1_000));
  return keys.length;
}

/** `used_memory` from INFO memory. */
export async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  return m ? Number(m[1]) : Number.NaN;
}

/** `redis_version` from INFO server. */
export async function redisVersion(redis: Redis): Promise<string> {
  const info = await redis.info('server');
  return /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown';
}

/**
 * MEMORY USAGE of every key under `prefix`, summed per kind of key (payment hash, history,
 * idempotency key, BullMQ job, …). Unlike `used_memory` this is not disturbed by other users of
 * a shared Redis.
 */
export async function memoryByKind(redis: Redis, prefix: string): Promise<{ total: number; keys: number; byKind: Map<string, { keys: number; bytes: number }> }> {
  const keys = await scanKeys(redis, `${prefix}:*`);
  const byKind = new Map<string, { keys: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < keys.length; i += CHUNK) {
    const chunk = keys.slice(i, i + CHUNK);
    const pipe = redis.pipeline();
    for (const k of chunk) pipe.call('MEMORY', 'USAGE', k, 'SAMPLES', '0');
    const results = (await pipe.exec()) ?? [];
    chunk.forEach((k, j) => {
      const b = Number(results[j]?.[1] ?? 0);
      const kind = kindOf(k.slice(prefix.length + 1));
      const e = byKind.get(kind) ?? { keys: 0, bytes: 0 };
      e.keys += 1;
      e.bytes += b;
      byKind.set(kind, e);
      total += b;
    });
  }
  return { total, keys: keys.length, byKind };
}

/** Groups a key (without the prefix) by what it stores. */
function kindOf(rest: string): string {
  const [head = '', second = ''] = rest.split(':');
  switch (head) {
    case 'pay':
      return rest.endsWith(':hist') ? 'payment history (pay:<id>:hist)' : 'payment hash (pay:<id>)';
    case 'idem':
      return 'idempotency key (idem:…)';
    case 'pk':
    case 'oid':
      return 'paymentKey / orderId claims (pk:, oid:)';
    case 'books':
      return 'books stream (books)';
    case 'confirm':
    case 'resolve':
    case 'maintenance':
      return second.startsWith('pay_') ? `BullMQ ${head} job hashes` : `BullMQ ${head} queue structures`;
    default:
      return `other (${head})`;
  }
}

/** Calls and CPU µs per command, from INFO commandstats (the whole server). */
export async function commandStats(redis: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const info = await redis.info('commandstats');
  const out = new Map<string, { calls: number; usec: number }>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

/** Sums INFO commandstats' calls between two readings: all commands, and EVAL/EVALSHA/FCALL alone. */
export function callsBetween(before: Map<string, { calls: number }>, after: Map<string, { calls: number }>): { total: number; scripts: number } {
  let total = 0;
  let scripts = 0;
  for (const [command, a] of after) {
    const n = a.calls - (before.get(command)?.calls ?? 0);
    total += n;
    if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/.test(command)) scripts += n;
  }
  return { total, scripts };
}

/** The commands that took the most Redis CPU between two readings, busiest first. */
export function topCommands(
  before: Map<string, { calls: number; usec: number }>,
  after: Map<string, { calls: number; usec: number }>,
  n = 5,
): { command: string; calls: number; usec: number }[] {
  const rows = [...after].map(([command, a]) => {
    const b = before.get(command) ?? { calls: 0, usec: 0 };
    return { command, calls: a.calls - b.calls, usec: a.usec - b.usec };
  });
  return rows.sort((x, y) => y.usec - x.usec).slice(0, n);
}
