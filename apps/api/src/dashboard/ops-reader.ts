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
import { BREAKER_FIELDS, breakerViewOf, FairShare, INFO_OF_KEY_OWNER, livePgClientFigures, TIME_OF_KEY_OWNER, type BreakerView, type FairView, type Keys, type PgClientFigures } from '@sluice/store';

/** The PG calls, in the order the dashboard stacks them. */
export const PG_CALLS: readonly PgCall[] = ['confirm', 'inquire', 'cancel', 'transactions'];

/** Seconds of confirm rate the ETA averages over: long enough to smooth the gate's batching. */
export const ETA_RATE_SECONDS = 10;
/** Merchants the dashboard lists with their payments waiting (in round-robin order). */
export const DASHBOARD_MERCHANTS = 20;


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

  /** Each provider's row: one pipeline for all of them. */
  private async providerRows(redis: Redis, lastSec: number): Promise<ProviderRow[]> {
    const pipe = redis.pipeline();
    for (const p of this.providers) {
      const f = p.keys.fair(p.id);
      pipe
        .hmget(p.keys.pgRate, ...PG_CALLS.map((c) => `${lastSec}:${c}`))
        .hget(p.keys.breaker, 'state')
        .hgetall(p.keys.pgClients)
        .hget(f.meta, 'waiting')
        .zcard(f.admitted);
    }
    const res = (await pipe.exec()) ?? [];
    const at = (i: number): unknown => {
      const [err, v] = res[i] ?? [null, null];
      if (err) throw err;
      return v;
    };
    return this.providers.map((p, i) => {
      const o = i * 5;
      const calls = (at(o) as (string | null)[]).reduce((a, v) => a + num(v), 0);
      const clients = livePgClientFigures(at(o + 2) as Record<string, string>, Date.now());
      return {
        id: p.id,
        limitPerSecond: p.limitPerSecond,
        callsPerSecond: calls,
        breaker: breakerViewOf([(at(o + 1) as string | null) ?? null]).state,
        connections: clients.reduce((a, c) => a + c.inFlight, 0),
        waiting: Math.max(0, num(at(o + 3) as string | null)),
        admitted: Number(at(o + 4)),
      };
    });
  }

  /** One pipelined read. `seriesSeconds` of history (≥ {@link ETA_RATE_SECONDS} is read anyway). */
  async snapshot(seriesSeconds: number, failures = 0): Promise<OpsSnapshot> {
    const redis = await this.redis();
    if (this.offsetMs === null) this.offsetMs = redisMs((await redis.eval(TIME_OF_KEY_OWNER, 1, this.keys.counters) as string[]).map(String) as [string, string]) - Date.now();
    const k = this.keys;
    const n = Math.max(seriesSeconds, ETA_RATE_SECONDS);
    // The current second is still being written: the series ends at the one before it.
    const last = Math.floor((Date.now() + this.offsetMs) / 1000) - 1;
    const seconds = Array.from({ length: n }, (_, i) => last - n + 1 + i);

    const sent = Date.now();
    const fairView = new FairShare(redis, k).view(DASHBOARD_MERCHANTS);
    const providerRows = this.providerRows(redis, last);
    const res = await redis
      .pipeline()
      // TIME and INFO of the server that holds these keys, by scripts that name one of them: on a
      // Redis Cluster the whole pipeline then goes to one node and is redirected together.
      .eval(TIME_OF_KEY_OWNER, 1, k.counters)
      .hmget(k.pgRate, ...seconds.flatMap((s) => PG_CALLS.map((c) => `${s}:${c}`)))
      .hmget(k.intakeRate, ...seconds.map(String))
      .hmget(k.finalRate, ...seconds.flatMap((s) => FINAL_STATUSES.map((st) => `${s}:${st}`)))
      .zcard(k.open)
      .zrange(k.open, 0, 0, 'WITHSCORES')
      .zcard(k.inDoubt)
      .hmget(k.breaker, ...BREAKER_FIELDS)
      .hgetall(k.counters)
      .lrange(k.recentFailures, 0, Math.max(failures, 1) - 1)
      .eval(INFO_OF_KEY_OWNER, 1, k.counters, 'memory')
      .hgetall(k.pgClients)
      .exec();
    if (!res) throw new Error('ops read: pipeline aborted');
    const out = res.map(([err, v]) => {
      if (err) throw err;
      return v;
    });
    const [time, pgRaw, intakeRaw, finalRaw, backlog, oldest, inDoubt, breaker, counters, failuresRaw, info, pgClients] = out as [
      [string, string], (string | null)[], (string | null)[], (string | null)[], number, string[], number,
      (string | null)[], Record<string, string>, string[], string, Record<string, string>,
    ];
    const at = redisMs(time);
    this.offsetMs = at - (sent + Date.now()) / 2;

    const pg = Object.fromEntries(PG_CALLS.map((c, j) => [c, seconds.map((_, i) => num(pgRaw[i * PG_CALLS.length + j]))])) as Record<PgCall, number[]>;
    const final = Object.fromEntries(
      FINAL_STATUSES.map((st, j) => [st, seconds.map((_, i) => num(finalRaw[i * FINAL_STATUSES.length + j]))]),
    ) as Record<FinalStatus, number[]>;
    const confirmRate = pg.confirm.slice(-ETA_RATE_SECONDS).reduce((a, b) => a + b, 0) / ETA_RATE_SECONDS;
    const trim = <T>(a: T[]): T[] => (seriesSeconds > 0 ? a.slice(-seriesSeconds) : []);

    return {
      at,
      seconds: trim(seconds),
      pg: Object.fromEntries(PG_CALLS.map((c) => [c, trim(pg[c])])) as Record<PgCall, number[]>,
      intake: trim(intakeRaw.map(num)),
      final: Object.fromEntries(FINAL_STATUSES.map((st) => [st, trim(final[st])])) as Record<FinalStatus, number[]>,
      backlog,
      // The open zset is scored by the intake time (Redis clock, ms).
      oldestAgeSeconds: oldest.length === 2 ? Math.max(0, (at - Number(oldest[1])) / 1000) : 0,
      inDoubt,
      confirmRate,
      etaSeconds: etaSeconds(backlog, confirmRate, this.limitPerSecond),
      breaker: breakerViewOf(breaker),
      counters: Object.fromEntries(Object.entries(counters).map(([f, v]) => [f, num(v)])),
      failures: failures > 0 ? failuresRaw.flatMap(parseFailure) : [],
      memory: parseRedisMemory(info),
      pgClients: livePgClientFigures(pgClients, Date.now()),
      fair: await fairView,
      providers: await providerRows,
    };
  }
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
