/**
 * BENCHMARKS.md: machine facts, the exact command, the targets (met / not met, with figures),
 * then one section per scenario. Figures are ratios and counts where possible; absolute times
 * depend on this machine and are given for context only.
 */
import { crashSection, degradedTargets, slowSection } from './report-degraded.ts';
import { booksSection, cpuSection, fairSection, memorySection, faultsSection, intakeSection, providersSection, redisSection, refundsSection, webhooksSection } from './report-sections.ts';
import { table } from './markdown.ts';
import { observations } from '../analysis/observations.ts';
import { gateUtilisation, machineShares, targets, type BenchResults } from '../analysis/results.ts';
import type { OverloadRun } from '../profiles/overload.ts';
import type { LatencyBoundResult } from '../profiles/latency-bound.ts';
import { invariantLine } from '../analysis/outcomes.ts';
import { count, max, ms, percentile, ratio, secs } from '../analysis/stats.ts';

/** CPU seconds per source over the run, with the share of one core over the same wall time. */
function cpuLine(r: OverloadRun): string {
  return (['api', 'worker', 'simulator', 'redis', 'bench'] as const)
    .map((k) => {
      const v = r.cpu[k] ?? Number.NaN;
      return Number.isFinite(v) ? `${v.toFixed(1)} (${Math.round((100 * v) / r.cpuWallSeconds)} %)` : 'n/a';
    })
    .join(' / ');
}

function overloadTable(runs: readonly OverloadRun[]): string {
  const head = ['', ...runs.map((r) => `${r.config.key} #${r.run}`)];
  const row = (label: string, f: (r: OverloadRun) => string): string[] => [label, ...runs.map(f)];
  const others = (r: OverloadRun) => (r.intake.others.size === 0 ? 'none' : [...r.intake.others].map(([k, v]) => `${v} × ${k}`).join(', '));
  const states = (r: OverloadRun) =>
    Object.entries(r.outcomes.byStatus)
      .sort()
      .map(([k, v]) => `${k} ${count(v)}`)
      .join(', ');
  const endpoints = (r: OverloadRun) =>
    Object.entries(r.pg.byEndpoint)
      .map(([k, v]) => `${k} ${count(v)}`)
      .join(', ');
  return table(head, [
    row('worker processes / gate', (r) => `${r.config.processes} / ${r.config.env.GATE_ENABLED === 'false' ? `off, BullMQ limiter ${r.config.env.BULLMQ_LIMITER_MAX}` : 'on'}`),
    row('offered (open-loop)', (r) => count(r.intake.offered)),
    row('accepted (202)', (r) => `${count(r.intake.accepted)} (${((100 * r.intake.accepted) / r.intake.offered).toFixed(2)} %)`),
    row('other answers', others),
    row('intake latency p50 / p99 / max', (r) => `${ms(percentile(r.intake.latency, 50))} / ${ms(percentile(r.intake.latency, 99))} / ${ms(max(r.intake.latency))}`),
    row('generator lag p99 / max', (r) => `${ms(percentile(r.intake.lag, 99))} / ${ms(max(r.intake.lag))}`),
    row('PG requests', (r) => `${count(r.pg.requests)} (${endpoints(r)})`),
    row('**PG max in a rolling 1,000 ms**', (r) => `**${r.pg.maxInWindow}**`),
    row('**PG 429 / 503**', (r) => `**${r.pg.status429} / ${r.pg.status503}**`),
    row('PG peak connections', (r) => String(r.peakConnections)),
    row('PG arrivals: most in any 10 ms / longest gap while sending', (r) => `${r.pg.maxIn10Ms} / ${ms(r.pg.longestGapMs)}`),
    row('simulator probes (every 20 ms) slower than 10 ms / slowest (bench timer lag max)', (r) =>
      `${r.stalls.slow} of ${count(r.stalls.probes)} / ${ms(r.stalls.maxRttMs)} (${ms(r.stalls.maxBenchLagMs)})`,
    ),
    row('Redis PINGs slower than 10 ms / slowest', (r) => `${r.stalls.redisSlow} / ${ms(r.stalls.maxRedisMs)}`),
    row('over-limit episodes: worst count at +s; slowest simulator probe in the second before vs the gate margin then; longest gap between arrivals and most in 50 ms over it', (r) =>
      r.violationStalls.length === 0
        ? 'none'
        : r.violationStalls
            .slice(0, 3)
            .map(
              (v) =>
                `${v.count} at +${((v.to - r.pg.firstArrival) / 1000).toFixed(1)} s; probe ${v.stall ? ms(v.stall.rttMs) : 'n/a'}` +
                (v.marginMs === null ? '' : ` vs margin ${ms(v.marginMs)}`) +
                `; gap ${ms(v.gapMs)}, ${v.densest50} in 50 ms`,
            )
            .join('; ') + (r.violationStalls.length > 3 ? `; … (${r.violationStalls.length} episodes)` : ''),
    ),
    row('PG answers other than 429/503 in the drain', (r) => count(r.pg.useful)),
    row('backlog non-empty (100 ms samples)', (r) => secs(r.pg.backlogSeconds)),
    row('**utilisation** (useful ÷ 500/s × backlog time)', (r) => `**${ratio(r.pg.utilisation)}**`),
    row('utilisation, first PG arrival → last final', (r) => ratio(r.pg.utilisationSpan)),
    row('utilisation while confirms were still going out', (r) => ratio(r.pg.sendPhaseUtilisation)),
    row('steady PG rate (median of whole seconds)', (r) => `${count(r.pg.steadyRps)} /s`),
    row('gate margin median / max (1 s samples)', (r) => (r.margin ? `${r.margin.median.toFixed(1)} / ${r.margin.max.toFixed(1)} ms → ceiling ${count(500 / (1 + r.margin.median / 1000))} /s` : 'no gate')),
    row('gate slots granted / unused (share)', (r) =>
      r.slotsGranted > 0 ? `${count(r.slotsGranted)} / ${count(r.slotsGranted - r.pg.requests)} (${((100 * (r.slotsGranted - r.pg.requests)) / r.slotsGranted).toFixed(1)} %)` : 'no gate',
    ),
    row('drain: first PG arrival → last final', (r) => secs(r.drainSeconds)),
    row('tail: last confirm arrival → last final', (r) => secs(r.pg.tailSeconds)),
    row('ideal drain (PG requests ÷ 500/s)', (r) => secs(r.pg.idealSeconds)),
    row('ideal ÷ actual drain', (r) => ratio(r.pg.idealSeconds / r.drainSeconds)),
    row('PG calls per payment (mean)', (r) => (r.pg.requests / Math.max(1, r.intake.accepted)).toFixed(3)),
    row('intake → final p50 / p99', (r) => `${secs(percentile(r.outcomes.toFinal, 50) / 1000)} / ${secs(percentile(r.outcomes.toFinal, 99) / 1000)}`),
    row('final states', states),
    row('CPU s (share of one core): API / worker / simulator / Redis / bench', (r) => cpuLine(r)),
    row('machine CPU busy, all cores (of which not accounted to the stack\'s processes)', (r) => {
      const m = machineShares(r);
      return Number.isFinite(m.busy) ? `${Math.round(100 * m.busy)} % (${Math.round(100 * m.others)} %)` : 'n/a';
    }),
    row('Redis busiest commands (whole server): calls / µs per payment', (r) =>
      r.redisTop.map((c) => `${c.command} ${(c.calls / Math.max(1, r.intake.accepted)).toFixed(1)} / ${(c.usec / Math.max(1, r.intake.accepted)).toFixed(0)}`).join(', '),
    ),
    row('invariants vs PG ledger', (r) => invariantLine(r.outcomes.invariants) + (r.drained ? '' : ' (NOT DRAINED)')),
  ]);
}

function latencySection(list: readonly LatencyBoundResult[]): string {
  const l = list[0];
  if (!l) return '';
  return [
    '### Latency-bound run',
    '',
    `Simulator median ${l.medianMs} ms / p99 ${l.p99Ms} ms (lognormal mean ${Math.round(l.meanMs)} ms), ${count(l.offered)} payments offered at ` +
      'the overload rate, gate on, 1 worker process with the product defaults for its PG connections and concurrency. Not drained: the PG ' +
      `rate is read over the last ${l.windowSeconds.toFixed(1)} s of the load (before that the connections fill up and the short approvals ` +
      'come back first, so the rate overshoots), then the stack is stopped.',
    '',
    table(
      ['connections / worker concurrency', 'connections ÷ mean latency', 'min(connections, concurrency) ÷ mean latency', 'achieved PG rps (without 429/503)', 'achieved ÷ connections/latency', 'peak connections', 'max in 1,000 ms', '429 / 503', 'intake accepted'],
      list.map((x) => [
        `${x.connections} / ${x.workerConcurrency}`,
        `${x.littleCeiling.toFixed(1)} /s`,
        `${x.effectiveCeiling.toFixed(1)} /s`,
        `${x.achieved.toFixed(1)} /s`,
        ratio(x.achieved / x.littleCeiling),
        String(x.peakConnections),
        String(x.maxInWindow),
        `${x.status429} / ${x.status503}`,
        `${count(x.accepted)} of ${count(x.offered)}${x.others.size > 0 ? ` (${[...x.others].map(([k, v]) => `${v} × ${k}`).join(', ')})` : ''}`,
      ]),
    ),
    '',
    `With approvals this slow the connections bind, not the rate limit: by Little's law at most ${l.littleCeiling.toFixed(0)} requests/s fit ` +
      `through ${l.connections} connections, i.e. ${ratio(l.littleCeiling / 500)} of the 500/s budget, whatever the gate does.`,
  ].join('\n');
}

function overloadSection(r: BenchResults): string {
  if (r.overload.length === 0 && r.latency.length === 0) return '';
  const first = r.overload[0];
  const u = gateUtilisation(r);
  const parts = [
    '## 1. Overload',
    '',
    first
      ? `${count(first.intake.offered)} payments offered open-loop per run (${r.settings.rate}/s for ${r.settings.seconds} s; sends scheduled by the ` +
        `wall clock, never waiting for answers), unique paymentKey / orderId / Idempotency-Key each, 1 in 50 with the simulator's ` +
        '`sim_decline_` marker; simulator at its default latency (median 150 ms, p99 1.5 s). Each run gets a fresh stack (worker, then API) ' +
        'under its own Redis prefix and a reset simulator; the bench waits until the `open` zset is empty. PG figures come from the ' +
        'simulator\'s arrival log (`/__sim/arrivals`). **Utilisation** = PG answers other than 429/503 between the first PG arrival and the ' +
        'last `finalizedAt`, ÷ (500/s × the time the `open` zset was non-empty in that span, from 100 ms samples). Intake latency is measured ' +
        'from each request\'s send; "generator lag" is how late the bench sent against its schedule.'
      : '',
    '',
    r.overload.length > 0 ? overloadTable(r.overload) : '',
    '',
    u.runs.length > 0 ? `Gate with 1 worker process: median utilisation **${ratio(u.median)}** over ${u.runs.length} run(s): ${u.runs.map(ratio).join(', ')}.` : '',
    '',
    'Reading the utilisation: the gate spaces slots (window + margin) ÷ 500 apart, so its ceiling is 500 ÷ (1 + margin/1000 ms) per second ' +
      '(row "gate margin"). The tail (last confirm sent → last payment final) is approval latency with nothing left to send; it counts ' +
      'against the drain by the definition above, and weighs more the shorter the run. "Unused" gate slots are slots granted but not ' +
      'followed by a PG request (a send refused as too late takes a new slot). The simulator probe and the 10 ms figure show stalls: when ' +
      'a process is not scheduled for longer than the margin, requests sent on time are read by the PG in a burst, and the PG counts ' +
      'them when it reads them.',
    '',
    latencySection(r.latency),
  ];
  return parts.join('\n');
}

/** The whole BENCHMARKS.md from one run's results. */
export function renderReport(r: BenchResults): string {
  const m = r.machine;
  const lines = [
    '# Sluice benchmarks',
    '',
    'Written by `npm run bench` (apps/bench). Do not edit by hand: rerun the bench.',
    '',
    '```',
    r.command,
    '```',
    '',
    table(
      ['cores', 'CPU', 'Node', 'Redis', 'platform', 'date', 'commit', 'bench wall time', 'load average at start / end'],
      [[String(m.cores), m.cpuModel, m.node, m.redis, m.platform, m.date, m.commit, secs(r.elapsedSeconds), `${m.loadStart.toFixed(2)} / ${m.loadEnd.toFixed(2)}`]],
    ),
    '',
    'Everything runs on this one machine: Redis, the PG simulator (its own process), the API, the worker(s) and the load generator ' +
      '(the bench process) share its cores, so absolute rates are this machine\'s; the targets are ratios and counts. The load average ' +
      'at the start is other work on the machine (the bench had not started anything yet).',
    '',
    `The PG simulator runs at nice ${r.settings.simNice}. It stands in for a PG on its own machine, whose clock the contract ` +
      'says jitters by a few ms; at equal priority on these 2 shared cores it is starved for tens of ms at a time by the load ' +
      'generator and Sluice, and then reads (and counts) a burst of requests that were sent on time. `--sim-nice 0` measures that.',
    '',
    '## Targets',
    '',
    ...[...targets(r), ...degradedTargets(r)].map((t) => `- **${t.met === null ? 'not run' : t.met === 'measured' ? 'measured' : t.met ? 'met' : 'NOT MET'}**: ${t.name}: ${t.figure}`),
    '',
  ];
  if (r.failures.length > 0) lines.push('**Scenarios that could not run:**', '', ...r.failures.map((f) => `- ${f}`), '');
  const obs = observations(r);
  if (obs.length > 0) lines.push('## Observations', '', 'Computed from the figures below.', '', ...obs.map((o) => `- ${o}`), '');
  for (const section of [overloadSection(r), intakeSection(r), faultsSection(r), memorySection(r), slowSection(r), crashSection(r), booksSection(r), fairSection(r), providersSection(r), refundsSection(r), webhooksSection(r), redisSection(r), cpuSection(r)]) {
    if (section) lines.push(section, '');
  }
  const runs = [
    ...r.overload.map((o) => ({ label: `overload ${o.config.key} #${o.run}`, p: o.problems })),
    ...r.latency.map((l) => ({ label: `latency-bound (worker concurrency ${l.workerConcurrency})`, p: l.problems })),
    ...(r.faults ? [{ label: 'faults', p: r.faults.problems }] : []),
    ...r.slow.map((x) => ({ label: `slow (${x.variant.label})`, p: x.problems })),
    ...r.crash.map((x) => ({ label: `crash (${x.label})`, p: x.problems })),
  ];
  const notes = runs.flatMap(({ label, p }) => [
    `- ${label}: ${p.errors.length} error line(s), ${p.warnings} warning(s)`,
    ...p.errors.slice(0, 5).map((e) => `  - \`${e.replace(/`/g, "'")}\``),
  ]);
  if (notes.length > 0) lines.push('## Stack logs (errors quoted, first five per run)', '', ...notes, '');
  return lines.join('\n');
}
