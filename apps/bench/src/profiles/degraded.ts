/**
 * Scenarios 5 and 6, the PG budget when things go wrong:
 * - **slow**: approvals lognormal (median 300 ms, σ 1.0) and 10 % of confirms taking 15–30 s,
 *   400 payments/s for 20 s. Run with the product defaults (adaptive read timeout, a reserve of
 *   connections for inquiries and cancels) and with the settings before them (a fixed 5 s read
 *   timeout, no reserve), in the same bench run.
 * - **crash**: 400 payments/s for 30 s with a worker process killed (SIGKILL) at 10 s: once with
 *   2 processes under the cluster supervisor, which restarts a dead fork at once, and once with a
 *   single process restarted 1 s after its kill.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connectionsPerProcess, testConfig } from '@sluice/config';
import type { SimulatorKnobs } from '@sluice/pg-simulator';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { createPool, openLoop, type OpenLoopResult } from '../harness/load.ts';
import { summarise, type Outcomes } from '../analysis/outcomes.ts';
import { analysePg, type PgAnalysis } from '../analysis/pg-analysis.ts';
import { deleteMatching, readCounters, readPayments } from '../harness/redis-tools.ts';
import { freePort, Stack } from '../harness/stack.ts';
import { percentile } from '../analysis/stats.ts';

/** σ = 1.0 for a median of 300 ms: p99 = 300 · e^(2.326 · 1.0). */
export const SLOW_KNOBS: Partial<SimulatorKnobs> = {
  latencyMedianMs: 300,
  latencyP99Ms: Math.round(300 * Math.exp(2.3263478740408408)),
  longApprovalRate: 0.1,
  longApprovalMinMs: 15_000,
  longApprovalMaxMs: 30_000,
};
const SLOW_RATE = 400;
const SLOW_SECONDS = 20;
/** An approval this much slower than its first confirm's arrival is in the 15–30 s tail. */
const TAIL_MS = 14_000;

/** A setting the slow profile runs with. */
export interface SlowVariant {
  label: string;
  env: Record<string, string>;
}

/** The slow profile's settings: the defaults, and the read timeout before the adaptive one. */
export const SLOW_VARIANTS: SlowVariant[] = [
  { label: 'defaults (adaptive read timeout, 20 connections reserved for inquiries and cancels)', env: {} },
  {
    label: 'before: fixed 5 s read timeout, no reserve',
    env: { PG_HEADERS_TIMEOUT_MIN_MS: '5000', PG_HEADERS_TIMEOUT_MS: '5000', PG_CONNECTIONS_RESERVED: '0' },
  },
];

/** What one slow-profile run measured. */
export interface SlowRun {
  variant: SlowVariant;
  intake: OpenLoopResult;
  outcomes: Outcomes;
  pg: PgAnalysis;
  drained: boolean;
  /** Distinct payments whose first confirm reached the PG, per second, over the load's 20 s. */
  firstConfirmsPerSecond: number;
  callsPerPayment: number;
  callsByType: Record<string, number>;
  peakConnections: number;
  cancels: number;
  /** Connection-seconds a payment held (all its calls' holds, gate wait included). */
  holdSecondsPerPayment: number;
  meanHoldMs: number;
  /** min(offered, connections ÷ hold per payment, gate ceiling ÷ calls per payment), payments/s. */
  bound: number;
  connections: number;
  /** The confirm read timeout in force, sampled every 2 s during the load (ms), and the observed p75 it was built on. */
  confirmTimeoutMs: number[];
  confirmP75Ms: number[];
  /** 202 → final (ms) outside the 15–30 s tail: p50, p99; and of the tail. */
  toFinal: { p50: number; p99: number; tailP50: number; tail: number };
  /** Approvals the PG made that Sluice shows otherwise (must be 0). */
  approvalsNotApproved: number;
  /** Jobs whose lock lapsed plus lock renewals that failed (must be 0: the locks are not too short). */
  stalled: number;
  problems: { errors: string[]; warnings: number };
}

/** Reads the worker's /metrics text. */
async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return res.text();
}

function metric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/** Runs the slow profile with one setting. */
export async function runSlow(ctx: BenchContext, variant: SlowVariant): Promise<SlowRun> {
  const { sim, progress } = ctx;
  progress.phase(`slow (${variant.label.split(' (')[0]}): starting stack`);
  await sim.fresh(SLOW_KNOBS);
  const prefix = ctx.newPrefix();
  const metricsPort = await freePort();
  const stack = new Stack(prefix, sim.pgUrl, { ...variant.env, WORKER_METRICS_PORT: String(metricsPort) });
  try {
    await stack.startWorker(1);
    const apiUrl = await stack.startApi();
    const sampler = new BacklogSampler(ctx, prefix);
    const pool = createPool(apiUrl, 64);
    progress.phase(`slow: ${SLOW_RATE}/s × ${SLOW_SECONDS}s`);
    sampler.start();
    const timeouts: number[] = [];
    const observed: [number, number][] = [];
    /** p50 and p75 (s) the timeout was built on. */
    const timeoutProbe = setInterval(() => {
      scrape(metricsPort).then((t) => {
        timeouts.push(metric(t, 'sluice_pg_read_timeout_seconds{call="confirm"}') * 1_000);
        observed.push([metric(t, 'sluice_pg_latency_observed_seconds{call="confirm",quantile="0.5"}'), metric(t, 'sluice_pg_latency_observed_seconds{call="confirm",quantile="0.75"}')]);
      }, () => undefined);
    }, 2_000);
    const intake = await openLoop(pool, {
      rate: SLOW_RATE,
      seconds: SLOW_SECONDS,
      tag: randomUUID().slice(0, 8),
      onTick: (offered, accepted) => {
        progress.state.offered = offered;
        progress.state.accepted = accepted;
      },
    });
    // The timeout while confirms are being sent: after the load the last samples are the slowest
    // calls (the fast ones finished first), and no new confirm uses the value.
    clearInterval(timeoutProbe);
    await pool.close();
    progress.phase('slow: drain');
    const drained = await sampler.waitEmpty(intake.lastAnswerAt, 300_000);
    await sampler.stop();
    const text = await scrape(metricsPort);
    const [arrivals, ledger, stats, rows, counters] = await Promise.all([
      sim.arrivals(), sim.ledger(), sim.stats(), readPayments(ctx.redis, prefix, intake.ids), readCounters(ctx.redis, prefix),
    ]);
    const outcomes = summarise(intake.ids, rows, ledger);
    const end = Number.isFinite(outcomes.lastFinal) ? outcomes.lastFinal : Date.now();
    const pg = analysePg(arrivals, sampler.samples, end);
    const payments = intake.ids.length;
    const firstFrom = pg.firstArrival;
    let firsts = 0;
    let approvalsNotApproved = 0;
    const tailKeys = new Set<string>();
    for (const [key, p] of Object.entries(ledger.payments)) {
      if (p.firstConfirmAt != null && p.firstConfirmAt >= firstFrom && p.firstConfirmAt < firstFrom + SLOW_SECONDS * 1_000) firsts++;
      if (p.approvedAt && p.firstConfirmAt != null && Date.parse(p.approvedAt) - p.firstConfirmAt >= TAIL_MS) tailKeys.add(key);
    }
    const normal: number[] = [];
    const tail: number[] = [];
    for (const r of rows) {
      if (r.finalizedAt === undefined || r.createdAt === undefined) continue;
      (tailKeys.has(r.paymentKey ?? '') ? tail : normal).push(Number(r.finalizedAt) - Number(r.createdAt));
      const pgStatus = ledger.payments[r.paymentKey ?? '']?.status;
      if (pgStatus === 'DONE' && r.status !== 'APPROVED') approvalsNotApproved++;
    }
    const holdSum = metric(text, 'sluice_pg_connection_hold_seconds_sum');
    const holdCount = metric(text, 'sluice_pg_connection_hold_seconds_count');
    const callsPerPayment = pg.requests / payments;
    const holdSecondsPerPayment = holdSum / payments;
    // The worker's share, as its own config derives it (the cap less the headroom).
    const connections = connectionsPerProcess(testConfig(variant.env));
    const bound = Math.min(SLOW_RATE, connections / holdSecondsPerPayment, 500 / callsPerPayment);
    const result: SlowRun = {
      variant, intake, outcomes, pg, drained,
      firstConfirmsPerSecond: firsts / SLOW_SECONDS,
      callsPerPayment,
      callsByType: Object.fromEntries(Object.entries(pg.byEndpoint).map(([k, v]) => [k, v / payments])),
      peakConnections: stats.peakConnections,
      cancels: pg.byEndpoint.cancel ?? 0,
      holdSecondsPerPayment,
      meanHoldMs: (holdSum / Math.max(1, holdCount)) * 1_000,
      bound,
      connections,
      confirmTimeoutMs: timeouts,
      confirmP75Ms: observed.map(([, p75]) => p75 * 1_000),
      toFinal: {
        p50: percentile(Float64Array.from(normal), 50),
        p99: percentile(Float64Array.from(normal), 99),
        tailP50: percentile(Float64Array.from(tail), 50),
        tail: tail.length,
      },
      approvalsNotApproved,
      stalled: Number(counters['jobs:stalled'] ?? 0) + Number(counters['jobs:lockRenewalFailed'] ?? 0),
      problems: stack.problems(),
    };
    progress.note(
      `slow (${variant.label.split(' (')[0]}): first confirms ${result.firstConfirmsPerSecond.toFixed(0)}/s, bound ${bound.toFixed(0)}/s, ` +
        `${callsPerPayment.toFixed(2)} calls/payment, peak connections ${stats.peakConnections}, cancels ${result.cancels}, ` +
        `p99 to final ${(result.toFinal.p99 / 1_000).toFixed(1)}s, 429 ${pg.status429}, 503 ${pg.status503}`,
    );
    return result;
  } finally {
    await stack.stop();
    await deleteMatching(ctx.redis, `${prefix}:*`);
  }
}

/** What one crash-profile run measured. */
export interface CrashRun {
  label: string;
  intake: OpenLoopResult;
  outcomes: Outcomes;
  pg: PgAnalysis;
  drained: boolean;
  /** Longest stretch without a PG request between the first and the last confirm (ms). */
  longestGapMs: number;
  /** Payments sent and not final when the process died. */
  held: number;
  /** From the restart (the new process reporting "worker started") to the last held payment final (ms). */
  restartToHeldFinalMs: number;
  /**
   * Single process only: from the restarted process's spawn to the PG's next request (ms). With
   * two processes the survivor keeps sending, so a restarted fork's first request is not told apart.
   */
  spawnToFirstRequestMs: number;
  stalled: number;
  lockRenewalFailed: number;
  problems: { errors: string[]; warnings: number };
}

const CRASH_RATE = 400;
const CRASH_SECONDS = 30;
const KILL_AT_MS = 10_000;

/** Payments sent to the PG and not final (what a dead worker may have held). */
async function heldPayments(ctx: BenchContext, prefix: string, ids: readonly string[]): Promise<string[]> {
  const pipe = ctx.redis.pipeline();
  for (const id of ids) pipe.hmget(`${prefix}:pay:${id}`, 'phase', 'attempts');
  const res = (await pipe.exec()) ?? [];
  return ids.filter((_, i) => {
    const [phase, attempts] = (res[i]?.[1] ?? []) as (string | null)[];
    return phase !== null && phase !== 'final' && phase !== 'queued' && Number(attempts ?? 0) > 0;
  });
}

/** Runs the crash profile: supervised (2 processes) or a single process restarted after 1 s. */
export async function runCrash(ctx: BenchContext, supervised: boolean): Promise<CrashRun> {
  const { sim, progress } = ctx;
  const label = supervised ? '2 worker processes, the supervisor restarts a killed one at once' : '1 worker process, restarted 1 s after its kill';
  progress.phase(`crash (${supervised ? 'supervised' : 'single'}): starting stack`);
  await sim.fresh();
  const prefix = ctx.newPrefix();
  const stack = new Stack(prefix, sim.pgUrl);
  try {
    await stack.startWorker(supervised ? 2 : 1);
    const apiUrl = await stack.startApi();
    const sampler = new BacklogSampler(ctx, prefix);
    const pool = createPool(apiUrl, 64);
    sampler.start();
    progress.phase(`crash: ${CRASH_RATE}/s × ${CRASH_SECONDS}s, kill -9 at ${KILL_AT_MS / 1_000}s`);
    const accepted: string[] = [];
    const loading = openLoop(pool, {
      rate: CRASH_RATE,
      seconds: CRASH_SECONDS,
      tag: randomUUID().slice(0, 8),
      onTick: (offered, n) => {
        progress.state.offered = offered;
        progress.state.accepted = n;
      },
      onAccepted: (id) => accepted.push(id),
    });
    await new Promise((r) => setTimeout(r, KILL_AT_MS));
    const before = stack.worker!.output().match(/worker started/g)?.length ?? 0;
    const victim = supervised ? forkOf(stack.worker!.child.pid!) : stack.worker!.child.pid!;
    process.kill(victim, 'SIGKILL');
    const killedAt = Date.now();
    const held = await heldPayments(ctx, prefix, accepted);
    let startedAt: number;
    let spawnedAt = Number.NaN;
    if (supervised) {
      while ((stack.worker!.output().match(/worker started/g)?.length ?? 0) <= before) await new Promise((r) => setTimeout(r, 20));
      startedAt = Date.now();
    } else {
      await new Promise((r) => setTimeout(r, 1_000 - (Date.now() - killedAt)));
      spawnedAt = Date.now();
      await stack.startWorker(1);
      startedAt = Date.now();
    }
    const intake = await loading;
    await pool.close();
    progress.phase('crash: drain');
    const drained = await sampler.waitEmpty(intake.lastAnswerAt, 300_000);
    await sampler.stop();
    const [arrivals, ledger, rows, counters] = await Promise.all([
      sim.arrivals(), sim.ledger(), readPayments(ctx.redis, prefix, intake.ids), readCounters(ctx.redis, prefix),
    ]);
    const outcomes = summarise(intake.ids, rows, ledger);
    const end = Number.isFinite(outcomes.lastFinal) ? outcomes.lastFinal : Date.now();
    const pg = analysePg(arrivals, sampler.samples, end);
    const finalAt = new Map(rows.map((r) => [r.id, Number(r.finalizedAt ?? Number.NaN)]));
    const heldFinal = Math.max(...held.map((id) => finalAt.get(id) ?? Number.NaN));
    // Requests the dead process wrote just before its kill arrive within a few ms of it.
    const firstAfter = supervised ? Number.NaN : (arrivals.find((a) => a.t > killedAt + 200)?.t ?? Number.NaN);
    const result: CrashRun = {
      label, intake, outcomes, pg, drained,
      longestGapMs: pg.longestGapMs,
      held: held.length,
      restartToHeldFinalMs: heldFinal - startedAt,
      spawnToFirstRequestMs: firstAfter - spawnedAt,
      stalled: Number(counters['jobs:stalled'] ?? 0),
      lockRenewalFailed: Number(counters['jobs:lockRenewalFailed'] ?? 0),
      problems: stack.problems(),
    };
    progress.note(
      `crash (${supervised ? 'supervised' : 'single'}): longest PG gap ${(pg.longestGapMs / 1_000).toFixed(2)}s, held ${held.length}, ` +
        `restart → held final ${(result.restartToHeldFinalMs / 1_000).toFixed(1)}s, stalled ${result.stalled}`,
    );
    return result;
  } finally {
    await stack.stop();
    await deleteMatching(ctx.redis, `${prefix}:*`);
  }
}

/** One of the cluster primary's forks. */
function forkOf(primaryPid: number): number {
  const out = execFileSync('pgrep', ['-P', String(primaryPid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  if (out.length === 0) throw new Error(`no fork of ${primaryPid}`);
  return Number(out[0]);
}
