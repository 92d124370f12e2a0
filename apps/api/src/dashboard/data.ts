/**
 * The JSON behind the dashboard (`GET /dashboard/data`): five minutes of per-second series and
 * the figures of the moment, from one {@link OpsReader} snapshot. The page polls it every second,
 * so it must stay one Redis round trip: no BullMQ counts here (those are in `/metrics`).
 */
import { FINAL_STATUSES, type FinalStatus, type PgCall } from '@sluice/domain';
import type { OpsReader, OpsSnapshot, ProviderRow, RecentFailure, RedisMemory } from './ops-reader.ts';

/** The history the charts show: five minutes. */
export const DASHBOARD_SERIES_SECONDS = 300;
/** Rows of the latest-failures table. */
export const DASHBOARD_FAILURES = 20;

/** The JSON behind the dashboard page. */
export interface DashboardData {
  /** Redis time of the read (ms). */
  at: number;
  /** The PG's limit per second: the line the PG chart is drawn against. */
  limitPerSecond: number;
  seconds: number[];
  pg: Record<PgCall, number[]>;
  intake: number[];
  final: Record<FinalStatus, number[]>;
  /** The last complete second. */
  now: { pgRps: number; confirmRps: number; inquireRps: number; cancelRps: number; transactionsRps: number; intakeRps: number };
  backlog: number;
  /** How long the oldest payment not final yet has waited (s). */
  oldestAgeSeconds: number;
  inDoubt: number;
  confirmRate: number;
  etaSeconds: number;
  breaker: OpsSnapshot['breaker'];
  totals: {
    created: number;
    final: Record<FinalStatus, number>;
    inDoubtEntered: number;
    breakerOpened: number;
    reconRepaired: number;
    reconOrphans: number;
    /** Merchants' cancels: asked for, done at the PG (or at once), not done; the amount refunded at the PG. */
    refunds: { requested: number; succeeded: number; failed: number; amount: number };
    /** Webhook deliveries: delivered (2xx), tries that failed, deliveries given up after the last try, endpoints disabled (410). */
    webhooks: { delivered: number; failedTries: number; gaveUp: number; disabled: number };
  };
  failures: RecentFailure[];
  memory: RedisMemory;
  /**
   * The PG client across live worker processes: the read timeout in force per call type (the
   * longest any process uses) and the mean connection hold over the last few seconds; null where
   * no process reported one.
   */
  pgClient: { processes: number; readTimeoutMs: Record<PgCall, number | null>; holdMs: Record<PgCall, number | null> };
  /** PG calls sent per final payment, by type, since the counters began; null before any is final. */
  callsPerPayment: Record<PgCall, number> | null;
  /** The books: how far the drainers are behind (see {@link booksLagOf}). */
  books: BooksLagView;
  /**
   * The fair share between merchants: payments admitted and not yet sent, merchants with
   * payments waiting, and the first of them (round-robin order) with their count and share.
   */
  fair: { admitted: number; merchants: number; top: { merchantId: string; waiting: number; weight: number; share: number }[] };
  /** Each PG (provider): calls in the last second against its limit, connections in use, breaker, backlog and the time to drain it at its limit. */
  providers: (ProviderRow & { etaSeconds: number })[];
}

/** The drainers' lag as the dashboard and /metrics show it. */
export interface BooksLagView {
  /** Age of the oldest change not yet in the books (s); grows while no drainer reports. */
  lagSeconds: number;
  /** Changes handed to a drainer and not yet committed, and changes not yet handed out. */
  pending: number;
  undelivered: number;
  /** When a drainer last reported (ms); null if none ever did. */
  reportedAt: number | null;
}

/** How long a drainer's report stays current: it reports every 2 s. */
const BOOKS_REPORT_STALE_MS = 10_000;

/**
 * The drainers' lag from the counters they write. A report older than 10 s means no drainer is
 * running: the lag then counts on from that report, so that an alert on it fires.
 */
export function booksLagOf(counters: Record<string, number>, nowMs: number): BooksLagView {
  const at = counters['books:lagAt'];
  const lagMs = counters['books:lagMs'] ?? 0;
  const stale = at !== undefined && nowMs - at > BOOKS_REPORT_STALE_MS ? nowMs - at : 0;
  return { lagSeconds: (lagMs + stale) / 1000, pending: counters['books:pending'] ?? 0, undelivered: counters['books:undelivered'] ?? 0, reportedAt: at ?? null };
}

const PG_CALLS: PgCall[] = ['confirm', 'inquire', 'cancel', 'transactions'];

/** Calls that reached the PG (every outcome but "not sent"), per call type, from `pg:<call>:<outcome>` counters. */
function callsSent(counters: Record<string, number>): Record<PgCall, number> {
  const out: Record<PgCall, number> = { confirm: 0, inquire: 0, cancel: 0, transactions: 0 };
  for (const [field, n] of Object.entries(counters)) {
    const [head, call, outcome] = field.split(':');
    if (head === 'pg' && outcome !== undefined && outcome !== 'not_sent' && call !== undefined && call in out) out[call as PgCall] += n;
  }
  return out;
}

function pgClientOf(s: OpsSnapshot): DashboardData['pgClient'] {
  const per = <T>(f: (call: PgCall) => T) => Object.fromEntries(PG_CALLS.map((c) => [c, f(c)])) as Record<PgCall, T>;
  const live = s.pgClients;
  return {
    processes: live.length,
    readTimeoutMs: per((c) => (live.length === 0 ? null : Math.max(...live.map((f) => f.readTimeoutMs[c])))),
    holdMs: per((c) => {
      const holds = live.map((f) => f.holdMs[c]).filter((h): h is number => h !== null);
      return holds.length === 0 ? null : Math.round(holds.reduce((a, b) => a + b, 0) / holds.length);
    }),
  };
}

const lastOf = (a: number[]): number => a[a.length - 1] ?? 0;

/** Shapes a snapshot for the page. */
export function toDashboardData(s: OpsSnapshot, limitPerSecond: number): DashboardData {
  const c = (f: string) => s.counters[f] ?? 0;
  const now = {
    confirmRps: lastOf(s.pg.confirm),
    inquireRps: lastOf(s.pg.inquire),
    cancelRps: lastOf(s.pg.cancel),
    transactionsRps: lastOf(s.pg.transactions),
    intakeRps: lastOf(s.intake),
  };
  return {
    at: s.at,
    limitPerSecond,
    seconds: s.seconds,
    pg: s.pg,
    intake: s.intake,
    final: s.final,
    now: { pgRps: now.confirmRps + now.inquireRps + now.cancelRps + now.transactionsRps, ...now },
    backlog: s.backlog,
    oldestAgeSeconds: Math.floor(s.oldestAgeSeconds),
    inDoubt: s.inDoubt,
    confirmRate: s.confirmRate,
    etaSeconds: s.etaSeconds,
    breaker: s.breaker,
    totals: {
      created: c('intake:created'),
      final: Object.fromEntries(FINAL_STATUSES.map((st) => [st, c(`final:${st}`)])) as Record<FinalStatus, number>,
      inDoubtEntered: c('inDoubt:entered'),
      breakerOpened: c('breaker:opened'),
      reconRepaired: c('recon:repaired'),
      reconOrphans: c('recon:orphans'),
      refunds: { requested: c('refund:requested'), succeeded: c('refund:succeeded'), failed: c('refund:failed'), amount: c('refund:amount') },
      webhooks: { delivered: c('webhook:delivered'), failedTries: c('webhook:failedTries'), gaveUp: c('webhook:gaveUp'), disabled: c('webhook:disabled') },
    },
    failures: s.failures,
    memory: s.memory,
    pgClient: pgClientOf(s),
    books: booksLagOf(s.counters, s.at),
    providers: s.providers.map((p) => ({ ...p, etaSeconds: Math.ceil((p.waiting + p.admitted) / Math.max(p.limitPerSecond, 1e-9)) })),
    fair: {
      admitted: s.fair.admitted,
      merchants: s.fair.merchants,
      top: s.fair.top.map((m) => ({ ...m, share: s.fair.activeWeights > 0 ? m.weight / s.fair.activeWeights : 0 })),
    },
    callsPerPayment: ((): Record<PgCall, number> | null => {
      const finals = FINAL_STATUSES.reduce((a, st) => a + c(`final:${st}`), 0);
      if (finals === 0) return null;
      const sent = callsSent(s.counters);
      return Object.fromEntries(PG_CALLS.map((call) => [call, sent[call] / finals])) as Record<PgCall, number>;
    })(),
  };
}

/** Reads and shapes one dashboard frame. */
export async function readDashboardData(reader: OpsReader, limitPerSecond: number): Promise<DashboardData> {
  return toDashboardData(await reader.snapshot(DASHBOARD_SERIES_SECONDS, DASHBOARD_FAILURES), limitPerSecond);
}
