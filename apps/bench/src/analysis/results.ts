/**
 * Everything one bench run measured, as the report reads it, and the targets the project sets,
 * each decided from those figures alone.
 */
import type { BooksResult } from '../profiles/books.ts';
import type { FairResult } from '../profiles/fair.ts';
import type { ProvidersResult } from '../profiles/providers.ts';
import type { RefundsResult } from '../profiles/refunds.ts';
import type { WebhooksResult } from '../profiles/webhooks.ts';
import type { RedisHaResult } from '../profiles/redis-ha.ts';
import type { ClusterResult } from '../profiles/redis-cluster.ts';
import type { FaultsResult } from '../profiles/faults.ts';
import type { IntakeResult } from '../profiles/intake.ts';
import type { LatencyBoundResult } from '../profiles/latency-bound.ts';
import type { MemoryResult } from '../profiles/memory.ts';
import type { CrashRun, SlowRun } from '../profiles/degraded.ts';
import type { OverloadRun } from '../profiles/overload.ts';
import type { NaiveRun } from '../profiles/cpu.ts';
import { invariantLine, invariantsClean } from './outcomes.ts';
import { count, median, percentile, ratio } from './stats.ts';

/** The machine a run measured on. */
export interface Machine {
  cores: number;
  /** 1-minute load average when the bench started and when it ended: the neighbours' share. */
  loadStart: number;
  loadEnd: number;
  cpuModel: string;
  node: string;
  redis: string;
  platform: string;
  date: string;
  /** HEAD commit, and how many paths differ from it (the bench measures the working tree). */
  commit: string;
}

/** Everything one bench run measured. */
export interface BenchResults {
  machine: Machine;
  command: string;
  settings: { rate: number; seconds: number; runs: number; quick: boolean; simNice: number };
  overload: OverloadRun[];
  /** The naive Express + BullMQ gateway under the overload's load (CPU section). */
  naive: NaiveRun | null;
  latency: LatencyBoundResult[];
  intake: IntakeResult | null;
  faults: FaultsResult | null;
  memory: MemoryResult | null;
  books: BooksResult | null;
  fair: FairResult | null;
  providers: ProvidersResult | null;
  refunds: RefundsResult | null;
  webhooks: WebhooksResult | null;
  redis: RedisHaResult | null;
  cluster: ClusterResult | null;
  slow: SlowRun[];
  crash: CrashRun[];
  /** Scenarios that could not run, with why. */
  failures: string[];
  elapsedSeconds: number;
}

/** A target of the project, decided from one run's figures (null: not run). */
export interface Target {
  name: string;
  /** Met or not; null: not run. A figure the issue asks for with no threshold: `measured` (when run). */
  met: boolean | null | 'measured';
  figure: string;
}

function windowTarget(runs: readonly OverloadRun[], label: string): Target {
  const name = `PG max in any rolling 1,000 ms ≤ 500 with 0 × 429 and 0 × 503 (${label})`;
  if (runs.length === 0) return { name, met: null, figure: 'not run' };
  const invalid = runs.filter((r) => !r.drained || r.pg.requests === 0);
  if (invalid.length > 0) return { name, met: false, figure: `${invalid.length} run(s) did not drain or reached no PG: no valid figure` };
  const worst = Math.max(...runs.map((r) => r.pg.maxInWindow));
  const s429 = runs.reduce((a, r) => a + r.pg.status429, 0);
  const s503 = runs.reduce((a, r) => a + r.pg.status503, 0);
  return {
    name,
    met: worst <= 500 && s429 === 0 && s503 === 0,
    figure: `max ${worst}, ${s429} × 429, ${s503} × 503 over ${runs.length} run${runs.length > 1 ? 's' : ''}`,
  };
}

/** Median utilisation of the gate with one worker process. */
export function gateUtilisation(r: BenchResults): { median: number; runs: number[] } {
  const runs = r.overload.filter((o) => o.config.key === 'gate1').map((o) => o.pg.utilisation);
  return { median: median(runs), runs };
}

/** The overload, intake and money-rule targets. */
export function targets(r: BenchResults): Target[] {
  const gate1 = r.overload.filter((o) => o.config.key === 'gate1');
  const gate4 = r.overload.filter((o) => o.config.key === 'gate4');
  const out: Target[] = [windowTarget(gate1, 'gate, 1 worker process'), windowTarget(gate4, 'gate, 4 worker processes')];
  const u = gateUtilisation(r);
  out.push({
    name: `PG utilisation during the drain ≥ 0.97, goal 0.99 (gate, 1 process, median of ${u.runs.length})`,
    met: u.runs.length === 0 ? null : Number.isFinite(u.median) && u.median >= 0.97,
    figure: u.runs.length === 0 ? 'not run' : `${ratio(u.median)} (runs: ${u.runs.map(ratio).join(', ')}); goal 0.99 ${u.median >= 0.99 ? 'met' : 'not met'}`,
  });
  const send = gate1.map((o) => o.pg.sendPhaseUtilisation);
  if (send.length > 0) {
    out.push({
      name: 'the same utilisation, reading "backlog" as payments not yet sent to the PG (the approval tail of the last sends left out)',
      met: median(send) >= 0.97,
      figure: `${ratio(median(send))} (runs: ${send.map(ratio).join(', ')})`,
    });
  }
  out.push({
    name: 'Intake throughput ÷ no-op Express JSON route ≥ 0.8',
    met: r.intake ? r.intake.ratio >= 0.8 : null,
    figure: r.intake
      ? `${ratio(r.intake.ratio)} (median of ${r.intake.ratios.length} round(s): ${r.intake.ratios.map(ratio).join(', ')}; ` +
        `Sluice ${r.intake.sluice.map((s) => count(s.rps)).join(' / ')} vs no-op ${r.intake.noop.map((s) => count(s.rps)).join(' / ')} req/s)`
      : 'not run',
  });
  const gated = [...gate1, ...gate4];
  if (gated.length > 0) {
    const offered = gated.reduce((a, o) => a + o.intake.offered, 0);
    const accepted = gated.reduce((a, o) => a + o.intake.accepted, 0);
    out.push({ name: 'Every offered payment accepted with 202 under overload (gate runs)', met: offered === accepted, figure: `${count(accepted)} of ${count(offered)}` });
  }
  const checked = [...r.overload.map((o) => ({ label: `overload ${o.config.key} #${o.run}`, inv: o.outcomes.invariants })), ...(r.faults ? [{ label: 'faults', inv: r.faults.outcomes.invariants }] : [])];
  if (checked.length > 0) {
    const bad = checked.filter((c) => !invariantsClean(c.inv));
    out.push({
      name: '0 lost, 0 double charges, 0 mismatches against the PG ledger (every run)',
      met: bad.length === 0,
      figure: bad.length === 0 ? `clean in ${checked.length} runs` : bad.map((b) => `${b.label}: ${invariantLine(b.inv)}`).join('; '),
    });
  }
  out.push(...cpuTargets(r));
  out.push(...booksTargets(r.books));
  out.push(...fairTargets(r.fair));
  out.push(...providersTargets(r.providers));
  out.push(...refundsTargets(r.refunds));
  out.push(...webhooksTargets(r.webhooks));
  out.push(...redisTargets(r.redis));
  out.push(...clusterTargets(r.cluster));
  return out;
}

/** CPU per payment of one run: ms per intake (API), per payment drained (worker), and Redis's. */
export interface CpuFigures {
  payments: number;
  apiMs: number;
  workerMs: number;
  redisMs: number;
  /** Redis commands per payment (scripts' own included), and script calls per payment. */
  commands: number;
  scripts: number;
  /** Intake latency from send, ms. */
  p50: number;
  p99: number;
}

/** One run's figures: every accepted payment is drained in a valid run, so both divide by it. */
export function cpuFigures(run: Pick<OverloadRun, 'intake' | 'cpu' | 'redisCalls'>): CpuFigures {
  const n = run.intake.accepted;
  const per = (seconds: number | undefined) => ((seconds ?? Number.NaN) * 1_000) / n;
  return {
    payments: n,
    apiMs: per(run.cpu.api),
    workerMs: per(run.cpu.worker),
    redisMs: per(run.cpu.redis),
    commands: run.redisCalls.total / n,
    scripts: run.redisCalls.scripts / n,
    p50: percentile(run.intake.latency, 50),
    p99: percentile(run.intake.latency, 99),
  };
}

/** Sluice's CPU figures: each the median of its gate runs with one worker process (null: none ran). */
export function sluiceCpu(r: BenchResults): CpuFigures | null {
  const runs = r.overload.filter((o) => o.config.key === 'gate1' && o.drained).map(cpuFigures);
  if (runs.length === 0) return null;
  const m = (f: (x: CpuFigures) => number) => median(runs.map(f));
  return {
    payments: m((x) => x.payments), apiMs: m((x) => x.apiMs), workerMs: m((x) => x.workerMs), redisMs: m((x) => x.redisMs),
    commands: m((x) => x.commands), scripts: m((x) => x.scripts), p50: m((x) => x.p50), p99: m((x) => x.p99),
  };
}

/** CPU per payment (issue "Lean hot paths"): the targets on this box, against the naive gateway in the same run. */
export function cpuTargets(r: BenchResults): Target[] {
  const names = [
    'cpu: worker ≤ 0.5 ms CPU per payment drained (gate, 1 process)',
    'cpu: API ≤ 0.25 ms CPU per intake',
    "cpu: intake p99 at 1,000/s while draining ≤ 100 ms, and below the naive BullMQ gateway's in the same run",
    'cpu: Redis CPU and commands per payment',
  ];
  const s = sluiceCpu(r);
  if (!s) return names.map((name) => ({ name, met: null, figure: 'not run' }));
  const naive = r.naive && r.naive.drained ? cpuFigures(r.naive) : null;
  const ms = (x: number) => `${x.toFixed(2)} ms`;
  return [
    { name: names[0]!, met: s.workerMs <= 0.5, figure: `${ms(s.workerMs)}${naive ? ` (naive gateway ${ms(naive.workerMs)})` : ''}` },
    { name: names[1]!, met: s.apiMs <= 0.25, figure: `${ms(s.apiMs)}${naive ? ` (naive gateway ${ms(naive.apiMs)})` : ''}` },
    {
      name: names[2]!,
      met: naive ? s.p99 <= 100 && s.p99 < naive.p99 : s.p99 <= 100 ? null : false,
      figure: `p99 ${Math.round(s.p99)} ms (p50 ${Math.round(s.p50)} ms)${naive ? `; naive gateway p99 ${Math.round(naive.p99)} ms (p50 ${Math.round(naive.p50)} ms)` : '; naive gateway not run'}`,
    },
    { name: names[3]!, met: 'measured', figure: `Redis ${ms(s.redisMs)} CPU, ${s.commands.toFixed(1)} commands (${s.scripts.toFixed(1)} scripts) per payment${naive ? `; naive gateway ${ms(naive.redisMs)}, ${naive.commands.toFixed(1)} (${naive.scripts.toFixed(1)})` : ''}` },
  ];
}

/** Machine busy share, and the share used by anything but the stack and the bench. */
export function machineShares(r: OverloadRun): { busy: number; others: number } {
  const total = r.cpu.machineTotal ?? Number.NaN;
  const busy = (r.cpu.machineBusy ?? Number.NaN) / total;
  const ours = (['api', 'worker', 'simulator', 'redis', 'bench'] as const).reduce((a, k) => a + (r.cpu[k] ?? 0), 0);
  return { busy, others: Math.max(0, busy - ours / total) };
}

/** The books' targets (issue "The books"); not run when the books scenario did not run. */
export function booksTargets(b: BooksResult | null): Target[] {
  const names = [
    'Intake throughput with the drainer running ≥ 0.95 × without it',
    'Drainer lag p99 ≤ 2 s at 1,000 payments/s offered',
    'After a 60 s database outage under 300 payments/s, the books caught up within 60 s, nothing lost',
    'Redis per queued payment ≤ 1.5 KB',
    'Redis per archived payment past its hot window ≤ 300 B, and 0 after the idempotency window (a payment\'s own keys; the fixed residue is given)',
  ];
  if (!b) return names.map((name) => ({ name, met: null, figure: 'not run' }));
  const ratio = b.intake.withDrainer.rps / b.intake.withoutDrainer.rps;
  const o = b.outage;
  const m = b.memory;
  return [
    { name: names[0]!, met: ratio >= 0.95, figure: `${ratio.toFixed(3)} (${b.intake.withDrainer.rps.toFixed(0)} vs ${b.intake.withoutDrainer.rps.toFixed(0)} req/s; p99 ${b.intake.withDrainer.p99Ms.toFixed(1)} vs ${b.intake.withoutDrainer.p99Ms.toFixed(1)} ms)` },
    { name: names[1]!, met: b.lag.p99Ms <= 2_000, figure: `p99 ${(b.lag.p99Ms / 1000).toFixed(2)} s, max ${(b.lag.maxMs / 1000).toFixed(2)} s (${b.lag.samples} samples)` },
    { name: names[2]!, met: o.caughtUpSeconds !== null && o.caughtUpSeconds <= 60 && o.lost === 0, figure: `caught up ${o.caughtUpSeconds === null ? 'never' : `${o.caughtUpSeconds.toFixed(1)} s`} after the database returned; lag peaked at ${(o.maxLagMs / 1000).toFixed(0)} s; ${o.lost} accepted payments missing from the books` },
    { name: names[3]!, met: m.queuedBytes <= 1_536, figure: `${m.queuedBytes.toFixed(0)} B` },
    { name: names[4]!, met: m.archivedBytes <= 300 && m.afterIdempotencyBytes < 1, figure: `${m.archivedBytes.toFixed(0)} B past the hot window, ${m.afterIdempotencyBytes.toFixed(1)} B after the idempotency window; fixed residue ${(m.afterFixedBytes / 1024).toFixed(0)} KB in all` },
  ];
}

/**
 * Fair share's targets (issue "Several PGs and a fair share"). The utilisation is the median of
 * the fair runs against the median of the single-merchant runs of the same shape, run alternately
 * with them; the small merchant's wait is its worst p99 over the fair runs.
 */
export function fairTargets(f: FairResult | null): Target[] {
  const names = [
    'fair: the small merchant\'s p99 wait from intake to the PG ≤ 1 s while another floods',
    'fair: utilisation (median of 3) ≥ 0.98 × the single-merchant overload\'s',
    'fair: ≤ 500 PG calls in any rolling second, 0 × 429',
    'weights: shares of the PG\'s calls within 5% of 3:1 while both are backlogged',
  ];
  if (!f || f.fair.length === 0) return names.map((name) => ({ name, met: null, figure: 'not run' }));
  const small = (r: FairResult['fair'][number]) => r.merchants.reduce((a, m) => (m.rate < a.rate ? m : a));
  const big = (r: FairResult['fair'][number]) => r.merchants.reduce((a, m) => (m.rate > a.rate ? m : a));
  const worstSmall = Math.max(...f.fair.map((r) => small(r).p99WaitMs));
  const worstBig = Math.max(...f.fair.map((r) => big(r).p99WaitMs));
  const fairU = median(f.fair.map((r) => r.pg.utilisation));
  const singleU = median(f.single.map((r) => r.pg.utilisation));
  const all = [...f.fair, ...f.single];
  const maxIn = Math.max(...all.map((r) => r.pg.maxInWindow), f.weights?.pg.maxInWindow ?? 0);
  const s429 = all.reduce((a, r) => a + r.pg.status429, 0) + (f.weights?.pg.status429 ?? 0);
  const w = f.weights;
  return [
    { name: names[0]!, met: worstSmall <= 1_000, figure: `${small(f.fair[0]!).id} (${small(f.fair[0]!).rate}/s) p99 ${(worstSmall / 1000).toFixed(2)} s (worst of ${f.fair.length}); ${big(f.fair[0]!).id} (${big(f.fair[0]!).rate}/s) p99 ${(worstBig / 1000).toFixed(2)} s` },
    { name: names[1]!, met: fairU >= 0.98 * singleU, figure: `${(fairU / singleU).toFixed(3)} (${fairU.toFixed(3)} vs ${singleU.toFixed(3)})` },
    { name: names[2]!, met: maxIn <= 500 && s429 === 0, figure: `max ${maxIn}, ${s429} × 429 (every run)` },
    w === null
      ? { name: names[3]!, met: null, figure: 'not run' }
      : { name: names[3]!, met: Math.abs(w.ratio / 3 - 1) <= 0.05, figure: `${w.ratio.toFixed(3)}:1 (${w.merchants.map((m) => `${m.id} ${count(m.confirmsWhileBoth)}`).join(', ')})` },
  ];
}

/** Several PGs' targets (issue "Several PGs and a fair share"): one PG down must not slow the other, and loses nothing. */
export function providersTargets(p: ProvidersResult | null): Target[] {
  const names = [
    "provider down: while one PG refuses, the other's throughput ≥ 0.97 × what it does alone in the same seconds",
    "provider down: over the whole run, the other's throughput ≥ 0.97 × what it does beside the same PG healthy",
    'provider down: every payment of the refusing PG final and as its ledger holds it after it recovers',
    'provider down: nothing crosses from one PG to the other',
    'provider down: ≤ each PG\'s limit in any rolling second, 0 × 429',
  ];
  if (!p) return names.map((name) => ({ name, met: null, figure: 'not run' }));
  const during = p.both.pgaPhases[1] / p.alone.pgaPhases[1];
  const whole = p.both.pgaConfirmsPerSecond / p.healthy.pgaConfirmsPerSecond;
  const b = p.pgb;
  const runs = [p.alone, p.healthy, p.both];
  const maxA = Math.max(...runs.map((x) => x.pgaMaxInWindow));
  const maxB = Math.max(p.healthy.pgbMaxInWindow, p.both.pgbMaxInWindow);
  const n429 = runs.reduce((a, x) => a + x.pga429 + x.pgb429, 0);
  return [
    { name: names[0]!, met: during >= 0.97, figure: `${during.toFixed(3)} (${p.both.pgaPhases[1].toFixed(1)} vs ${p.alone.pgaPhases[1].toFixed(1)} confirms/s, ${p.downSeconds[0]}–${p.downSeconds[1]} s)` },
    { name: names[1]!, met: whole >= 0.97, figure: `${whole.toFixed(3)} (${p.both.pgaConfirmsPerSecond.toFixed(1)} vs ${p.healthy.pgaConfirmsPerSecond.toFixed(1)} confirms/s)` },
    { name: names[2]!, met: b.final === b.accepted && b.mismatches === 0 && b.doubleCharges === 0, figure: `${count(b.final)}/${count(b.accepted)} final (${count(b.approved)} approved), ${b.mismatches} mismatches, ${b.doubleCharges} double charges; drained ${b.drainedSeconds.toFixed(1)} s after the start` },
    { name: names[3]!, met: p.crossed === 0, figure: `${p.crossed} payments at the other PG` },
    { name: names[4]!, met: maxA <= 500 && maxB <= 200 && n429 === 0, figure: `pga max ${maxA} (500), pgb max ${maxB} (200), ${n429} × 429` },
  ];
}

/** Refunds' targets (issue "Merchant lifecycle"): racing and retried cancels never refund beyond the balance, and the books equal the PG's. */
export function refundsTargets(f: RefundsResult | null): Target[] {
  const names = [
    'refunds: racing and retried cancels under cancel faults: 0 refunds beyond the balance, 0 double refunds',
    "refunds: Sluice's refunded amounts equal to the PG's to the won, in Redis and in the books",
    'refunds: every cancel settled; ≤ 500 in any rolling second, 0 × 429',
  ];
  if (!f) return names.map((name) => ({ name, met: null, figure: 'not run' }));
  return [
    { name: names[0]!, met: f.beyondBalance === 0 && f.doubleRefunds === 0, figure: `${f.beyondBalance} beyond the balance, ${f.doubleRefunds} double refunds over ${count(f.approved)} payments, ${count(f.cancels.accepted)} cancels (${count(f.inDoubt)} in doubt at first)` },
    {
      name: names[1]!,
      met: f.mismatchesRedis === 0 && f.mismatchesBooks === 0 && f.refundedSluice === f.refundedPg && f.refundedBooks === f.refundedPg,
      figure: `${f.mismatchesRedis} / ${f.mismatchesBooks} payments differ (Redis / books); refunded ${count(f.refundedSluice)} / ${count(f.refundedBooks)} vs the PG's ${count(f.refundedPg)}`,
    },
    { name: names[2]!, met: f.cancels.pending === 0 && f.pgMaxInWindow <= 500 && f.pg429 === 0, figure: `${f.cancels.pending} pending; PG max ${f.pgMaxInWindow} in any rolling second, ${f.pg429} × 429` },
  ];
}

/** Webhooks' targets (issue "Merchant lifecycle"): deliveries within a second at 500 payments/s, and none lost while the receiver is down. */
export function webhooksTargets(w: WebhooksResult | null): Target[] {
  const names = [
    'webhooks: p99 from final state to delivery ≤ 1 s at 500 payments/s',
    'webhooks: a receiver down for 60 s then back gets every event, none lost, each with its sequence number',
  ];
  if (!w) return names.map((name) => ({ name, met: null, figure: 'not run' }));
  const f = w.fast;
  const o = w.outage;
  return [
    { name: names[0]!, met: f.delivered === f.events && f.p99Ms <= 1_000, figure: `p50 ${Math.round(f.p50Ms)} ms, p99 ${Math.round(f.p99Ms)} ms, max ${Math.round(f.maxMs)} ms; ${count(f.delivered)} of ${count(f.events)} delivered` },
    { name: names[1]!, met: o.delivered === o.events && o.withSeq === o.delivered, figure: `${count(o.delivered)} of ${count(o.events)} delivered (${o.duplicates} twice), ${count(o.withSeq)} with seq; the last ${o.catchUpSeconds.toFixed(1)} s after the receiver was back` },
  ];
}

/** Redis beyond one node (issue "Outgrowing one Redis"): failover loses nothing, and what WAIT and API_PROCESSES change. */
export function redisTargets(x: RedisHaResult | null): Target[] {
  const names = [
    'Sentinel: 5 kills -9 of the primary under 300 payments/s: 0 acknowledged payments lost, 0 double charges, 0 mismatches, 0 × 429 at the PG',
    'Sentinel: intake resumes after each kill (time to the first 202 sent after it)',
    'WAIT on intake (REDIS_WAIT_REPLICAS=1 against 0): throughput, p50 and p99 side by side',
    'API_PROCESSES=2 against 1: intake throughput and p99 in the same run',
  ];
  if (!x) return names.map((name) => ({ name, met: null, figure: 'not run' }));
  const f = x.failover;
  const inv = f.invariants;
  const resumed = f.kills.every((k) => Number.isFinite(k.resumeMs));
  const side = (a: { rps: number; p50Ms: number; p99Ms: number }) => `${count(a.rps)} req/s, p50 ${a.p50Ms.toFixed(1)} ms, p99 ${a.p99Ms.toFixed(1)} ms`;
  return [
    {
      name: names[0]!,
      met: f.kills.length === 5 && inv.lost === 0 && inv.doubleCharges === 0 && inv.mismatches === 0 && inv.notFinal === 0 && f.pg429 === 0,
      figure: `${f.kills.length} kills; ${count(inv.acknowledged)} acknowledged: ${inv.lost} lost, ${inv.notFinal} not final, ${inv.doubleCharges} double charges, ${inv.mismatches} mismatches; PG max ${f.pgMaxInWindow}/s, ${f.pg429} × 429`,
    },
    {
      name: names[1]!,
      met: f.kills.length === 5 ? resumed : false,
      figure: f.kills.map((k) => (Number.isFinite(k.resumeMs) ? `${(k.resumeMs / 1_000).toFixed(1)} s` : 'never')).join(', '),
    },
    { name: names[2]!, met: 'measured', figure: `off: ${side(x.wait.off)}; on: ${side(x.wait.on)} (${ratio(x.wait.on.rps / x.wait.off.rps)} of the throughput)` },
    { name: names[3]!, met: 'measured', figure: `1: ${side(x.processes.one)}; 2: ${side(x.processes.two)} (${ratio(x.processes.two.rps / x.processes.one.rps)} × the throughput)` },
  ];
}

/** Redis Cluster (issue "Outgrowing one Redis"): the overload on 3 primaries against one Redis, and where the payments are. */
export function clusterTargets(x: ClusterResult | null): Target[] {
  const names = [
    'Cluster: the overload profile on 3 primaries: ≤ 500 in any rolling second, 0 × 429, utilisation within 2 % of one Redis',
    'Cluster: each primary holds at least 25 % of the payment keys',
  ];
  if (!x) return names.map((name) => ({ name, met: null, figure: 'not run' }));
  const c = x.cluster;
  const total = x.primaries.reduce((a, p) => a + p.paymentKeys, 0);
  const shares = x.primaries.map((p) => (total > 0 ? p.paymentKeys / total : 0));
  const clean = c.lost === 0 && c.notFinal === 0 && c.doubleCharges === 0 && c.mismatches === 0;
  return [
    {
      name: names[0]!,
      met: c.maxInWindow <= 500 && c.status429 === 0 && x.utilisationRatio >= 0.98 && clean,
      figure: `utilisation ${c.utilisationMedian.toFixed(3)} vs ${x.single.utilisationMedian.toFixed(3)} on one Redis (${ratio(x.utilisationRatio)}); ` +
        `PG max ${c.maxInWindow}/s, ${c.status429} × 429; ${count(c.accepted)} payments: ${c.lost} lost, ${c.notFinal} not final, ${c.doubleCharges} double charges, ${c.mismatches} mismatches`,
    },
    {
      name: names[1]!,
      met: shares.every((sh) => sh >= 0.25),
      figure: x.primaries.map((p, i) => `${(100 * shares[i]!).toFixed(0)} %`).join(' / ') + ` of ${count(total)} payment hashes (${x.primaries.map((p) => p.shards).join(' / ')} of the shards)`,
    },
  ];
}
