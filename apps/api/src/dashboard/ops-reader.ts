/**
 * One cheap read of what operators watch: the per-second PG call, intake and final-state counts,
 * the backlog, the payments in doubt, the breaker, the cluster-wide counters, the latest failures
 * and Redis memory. The dashboard and `/metrics` both read through here, so the page and the
 * alerts never disagree about a figure.
 *
 * Everything is one pipeline (one round trip). The per-second hashes are keyed by the Redis clock
 * (the Lua writers use `TIME`), so the reader keeps its own estimate of Redis time − local time,
 * refreshed by a `TIME` riding in every pipeline; only the first read pays a second round trip.
 */
import type { Redis } from 'ioredis';
import { FINAL_STATUSES, type FinalStatus, type PgCall } from '@sluice/domain';
import { BREAKER_FIELDS, breakerViewOf, cutBySlotMove, fairShares, INFO_OF_KEY_OWNER, livePgClientFigures, sumCounters, TIME_OF_KEY_OWNER, viewAll, worstBreaker, type BreakerView, type FairView, type Keys, type PgClientFigures } from '@sluice/store';

/** The PG calls, in the order the dashboard stacks them. */
export const PG_CALLS: readonly PgCall[] = ['confirm', 'inquire', 'cancel', 'transactions'];

/** Seconds of confirm rate the ETA averages over: long enough to smooth the gate's batching. */
export const ETA_RATE_SECONDS = 10;
/** Merchants the dashboard lists with their payments waiting (in round-robin order). */
export const DASHBOARD_MERCHANTS = 20;
/** Reads of a snapshot cut short by slot moves before the error reaches the operator (a 503). */
const SLOT_MOVE_ATTEMPTS = 5;
/** Wait before the n-th attempt again: n × this (1 s over all five). */
const SLOT_MOVE_BACKOFF_MS = 100;


/** A failure as apply-step.lua pushes it onto the `failures` list. */
export interface RecentFailure {
  at: number;
  id: string;
  status: string;
  code: string;
  message: string;
}

/** Redis's memory: used, the maxmemory (0: none), and their ratio. */
export interface RedisMemory {
  usedBytes: number;
  /** 0 when Redis has no maxmemory. */
  maxBytes: number;
  /** used ÷ max, 0 without maxmemory. */
  ratio: number;
}

/** One read of the figures operators watch: per-second series, backlog, in doubt, breaker, counters, failures, memory, PG clients. */
export interface OpsSnapshot {
  /** Redis time of the read (ms). */
  at: number;
  /** Epoch seconds of the series, oldest first, ending at the last complete second. */
  seconds: number[];
  pg: Record<PgCall, number[]>;
  intake: number[];
  final: Record<FinalStatus, number[]>;
  backlog: number;
  /** How long the oldest payment not final yet has been waiting since its 202 (s), 0 when none. */
  oldestAgeSeconds: number;
  inDoubt: number;
  /** Confirms per second over the last {@link ETA_RATE_SECONDS} s. */
  confirmRate: number;
  /** Seconds to drain the backlog at the recent confirm rate, or at the PG's limit when idle. */
  etaSeconds: number;
  breaker: BreakerView;
  /** The raw `counters` hash (intake:created, final:*, pg:*, recon:*, …). */
  counters: Record<string, number>;
  /** Each live worker process's PG client: read timeouts in force, connection holds. */
  pgClients: PgClientFigures[];
  failures: RecentFailure[];
  memory: RedisMemory;
  /** The merchants' fair queues (the first provider's): payments admitted, merchants waiting, the first of them. */
  fair: FairView;
  /** Each provider (PG): its calls in the last complete second, breaker, connections in use, backlog. */
  providers: ProviderRow[];
}

/** A provider as the operators see it. */
export interface ProviderRow {
  id: string;
  limitPerSecond: number;
  /** PG calls sent in the last complete second (all kinds). */
  callsPerSecond: number;
  breaker: BreakerView['state'];
  /** Connections in use across live worker processes. */
  connections: number;
  /** Payments waiting in its merchants' queues, and admitted and not yet sent. */
  waiting: number;
  admitted: number;
}

/** A provider the reader reads: its id, its view of the keys, its limit per second. */
export interface ReadProvider {
  id: string;
  keys: Keys;
  limitPerSecond: number;
}

/** Parses `used_memory` and `maxmemory` out of `INFO memory`. */
export function parseRedisMemory(info: string): RedisMemory {
  const field = (k: string) => Number(new RegExp(`^${k}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  const usedBytes = field('used_memory');
  const maxBytes = field('maxmemory');
  return { usedBytes, maxBytes, ratio: maxBytes > 0 ? usedBytes / maxBytes : 0 };
}

/**
 * Time to drain: backlog ÷ the recent confirm rate. When nothing was confirmed lately (idle, or
 * the breaker holds confirms back) the PG's limit is the best guess of the rate once it resumes.
 */
export function etaSeconds(backlog: number, confirmRate: number, limitPerSecond: number): number {
  if (backlog <= 0) return 0;
  const rate = confirmRate >= 1 ? confirmRate : limitPerSecond;
  return Math.ceil(backlog / Math.max(rate, 1e-9));
}

const num = (v: string | null | undefined): number => (v ? Number(v) || 0 : 0);

/** Reads {@link OpsSnapshot}s. One per app; it holds only the clock offset. */
export class OpsReader {
  private offsetMs: number | null = null;

  constructor(
    private readonly redis: () => Promise<Redis>,
    private readonly keys: Keys,
    /** The PG's limit in calls per second (PG_RATE_LIMIT scaled to one second). */
    private readonly limitPerSecond: number,
    /** Every provider, for the per-provider rows (the keys above are the first's). */
    private readonly providers: readonly ReadProvider[] = [{ id: keys.provider, keys, limitPerSecond }],
  ) {}

  /** Each provider's row: one pipeline per payment shard for all of them (a shard's keys share a slot), added up. */
  private async providerRows(redis: Redis, lastSec: number): Promise<ProviderRow[]> {
    const shards = Math.max(...this.providers.map((p) => p.keys.shards.length));
    const perShard = await Promise.all(Array.from({ length: shards }, async (_, n) => {
      const pipe = redis.pipeline();
      for (const p of this.providers) {
        const k = p.keys.shards[n] ?? p.keys.shards[0]!;
        const f = k.fair(p.id);
        pipe.hmget(k.pgRate, ...PG_CALLS.map((c) => `${lastSec}:${c}`)).hget(k.breaker, 'state').hget(f.meta, 'waiting').zcard(f.admitted);
      }
      return pipelined(await pipe.exec());
    }));
    const clients = await Promise.all(this.providers.map((p) => redis.hgetall(p.keys.pgClients)));
    return this.providers.map((p, i) => {
      const o = i * 4;
      const rows = perShard.slice(0, p.keys.shards.length);
      const live = livePgClientFigures(clients[i]!, Date.now());
      return {
        id: p.id,
        limitPerSecond: p.limitPerSecond,
        callsPerSecond: rows.reduce((a, r) => a + (r[o] as (string | null)[]).reduce((b, v) => b + num(v), 0), 0),
        breaker: worstBreaker(rows.map((r) => breakerViewOf([(r[o + 1] as string | null) ?? null]))).state,
        connections: live.reduce((a, c) => a + c.inFlight, 0),
        waiting: rows.reduce((a, r) => a + Math.max(0, num(r[o + 2] as string | null)), 0),
        admitted: rows.reduce((a, r) => a + Number(r[o + 3]), 0),
      };
    });
  }

  /**
   * One pipelined read per payment shard (on a Redis Cluster each goes to its slot's owner whole,
   * and is redirected together), and the root's; the shards' figures added up. `seriesSeconds` of
   * history (≥ {@link ETA_RATE_SECONDS} is read anyway).
   */
  async snapshot(seriesSeconds: number, failures = 0): Promise<OpsSnapshot> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.read(seriesSeconds, failures);
      } catch (err) {
        // A slot moved under the reads (on a Redis Cluster): again, once the client has heard of
        // the new map. The reads touch many slots, and several may be moving one after another.
        if (!cutBySlotMove(err) || attempt >= SLOT_MOVE_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, SLOT_MOVE_BACKOFF_MS * attempt));
      }
    }
  }

  private async read(seriesSeconds: number, failures: number): Promise<OpsSnapshot> {
    const redis = await this.redis();
    if (this.offsetMs === null) this.offsetMs = redisMs((await redis.eval(TIME_OF_KEY_OWNER, 1, this.keys.counters) as string[]).map(String) as [string, string]) - Date.now();
    const k = this.keys;
    const n = Math.max(seriesSeconds, ETA_RATE_SECONDS);
    // The current second is still being written: the series ends at the one before it.
    const last = Math.floor((Date.now() + this.offsetMs) / 1000) - 1;
    const seconds = Array.from({ length: n }, (_, i) => last - n + 1 + i);

    const sent = Date.now();
    const fairView = viewAll(fairShares(redis, k), DASHBOARD_MERCHANTS);
    const providerRows = this.providerRows(redis, last);
    const countersRead = Promise.all(k.allCounters.map((c) => redis.hgetall(c)));
    const root = redis
      .pipeline()
      // TIME of the server that holds these keys, by a script that names one of them.
      .eval(TIME_OF_KEY_OWNER, 1, k.counters)
      .hgetall(k.pgClients)
      .exec();
    const shardsRead = Promise.all(k.shards.map(async (s) => pipelined(await redis
      .pipeline()
      .hmget(s.pgRate, ...seconds.flatMap((sec) => PG_CALLS.map((c) => `${sec}:${c}`)))
      .hmget(s.intakeRate, ...seconds.map(String))
      .hmget(s.finalRate, ...seconds.flatMap((sec) => FINAL_STATUSES.map((st) => `${sec}:${st}`)))
      .zcard(s.open)
      .zrange(s.open, 0, 0, 'WITHSCORES')
      .zcard(s.inDoubt)
      .hmget(s.breaker, ...BREAKER_FIELDS)
      .lrange(s.recentFailures, 0, Math.max(failures, 1) - 1)
      // INFO of the server that holds the shard, likewise.
      .eval(INFO_OF_KEY_OWNER, 1, s.counters, 'memory')
      .exec())));
    // All awaited together: a read that fails leaves none of the others' rejections unheard.
    const [fair, providers, counterHashes, rootRead, shards] = await Promise.all([fairView, providerRows, countersRead, root, shardsRead]);
    const [time, pgClients] = pipelined(rootRead) as [[string, string], Record<string, string>];
    const at = redisMs(time);
    this.offsetMs = at - (sent + Date.now()) / 2;

    type ShardRead = [(string | null)[], (string | null)[], (string | null)[], number, string[], number, (string | null)[], string[], string];
    const reads = shards as ShardRead[];
    const sumAt = (col: 0 | 1 | 2, i: number): number => reads.reduce((a, r) => a + num(r[col][i]), 0);
    const pg = Object.fromEntries(PG_CALLS.map((c, j) => [c, seconds.map((_, i) => sumAt(0, i * PG_CALLS.length + j))])) as Record<PgCall, number[]>;
    const final = Object.fromEntries(
      FINAL_STATUSES.map((st, j) => [st, seconds.map((_, i) => sumAt(2, i * FINAL_STATUSES.length + j))]),
    ) as Record<FinalStatus, number[]>;
    const intake = seconds.map((_, i) => sumAt(1, i));
    const backlog = reads.reduce((a, r) => a + r[3], 0);
    // The open zsets are scored by the intake time (Redis clock, ms): the oldest of their oldest.
    const oldestAt = Math.min(...reads.map((r) => (r[4].length === 2 ? Number(r[4][1]) : Infinity)));
    const inDoubt = reads.reduce((a, r) => a + r[5], 0);
    const recent = reads.flatMap((r) => r[7].flatMap(parseFailure)).sort((a, b) => b.at - a.at).slice(0, failures);
    const memory = reads.map((r) => parseRedisMemory(r[8])).reduce((a, b) => (b.ratio > a.ratio ? b : a));
    const confirmRate = pg.confirm.slice(-ETA_RATE_SECONDS).reduce((a, b) => a + b, 0) / ETA_RATE_SECONDS;
    const trim = <T>(a: T[]): T[] => (seriesSeconds > 0 ? a.slice(-seriesSeconds) : []);

    return {
      at,
      seconds: trim(seconds),
      pg: Object.fromEntries(PG_CALLS.map((c) => [c, trim(pg[c])])) as Record<PgCall, number[]>,
      intake: trim(intake),
      final: Object.fromEntries(FINAL_STATUSES.map((st) => [st, trim(final[st])])) as Record<FinalStatus, number[]>,
      backlog,
      oldestAgeSeconds: Number.isFinite(oldestAt) ? Math.max(0, (at - oldestAt) / 1000) : 0,
      inDoubt,
      confirmRate,
      etaSeconds: etaSeconds(backlog, confirmRate, this.limitPerSecond),
      breaker: worstBreaker(reads.map((r) => breakerViewOf(r[6]))),
      counters: sumCounters(counterHashes),
      failures: failures > 0 ? recent : [],
      memory,
      pgClients: livePgClientFigures(pgClients, Date.now()),
      fair,
      providers,
    };
  }
}

/** A pipeline's replies, throwing the first error. */
function pipelined(res: [Error | null, unknown][] | null): unknown[] {
  if (!res) throw new Error('ops read: pipeline aborted');
  return res.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
}

function redisMs(t: [string, string]): number {
  return Number(t[0]) * 1000 + Math.floor(Number(t[1]) / 1000);
}

function parseFailure(s: string): RecentFailure[] {
  try {
    const f = JSON.parse(s) as Partial<RecentFailure>;
    return [{ at: Number(f.at) || 0, id: String(f.id ?? ''), status: String(f.status ?? ''), code: String(f.code ?? ''), message: String(f.message ?? '') }];
  } catch {
    return [];
  }
}
