/**
 * The JSON behind the dashboard (`GET /dashboard/data`): five minutes of per-second series and
 * the figures of the moment, from one {@link OpsReader} snapshot. The page polls it every second,
 * so it must stay one Redis round trip: no BullMQ counts here (those are in `/metrics`).
 */
import { FINAL_STATUSES, type FinalStatus, type PgCall } from '@sluice/domain';
import type { OpsReader, OpsSnapshot, RecentFailure, RedisMemory } from './ops-reader.ts';

/** The history the charts show: five minutes. */
export const DASHBOARD_SERIES_SECONDS = 300;
/** Rows of the latest-failures table. */
export const DASHBOARD_FAILURES = 20;

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
  };
  failures: RecentFailure[];
  memory: RedisMemory;
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
    },
    failures: s.failures,
    memory: s.memory,
  };
}

/** Reads and shapes one dashboard frame. */
export async function readDashboardData(reader: OpsReader, limitPerSecond: number): Promise<DashboardData> {
  return toDashboardData(await reader.snapshot(DASHBOARD_SERIES_SECONDS, DASHBOARD_FAILURES), limitPerSecond);
}
