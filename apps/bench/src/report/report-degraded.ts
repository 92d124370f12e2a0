/** The report's slow-PG and crash sections, and their targets. */
import type { CrashRun, SlowRun } from '../profiles/degraded.ts';
import { invariantLine, invariantsClean } from '../analysis/outcomes.ts';
import { table } from './markdown.ts';
import type { BenchResults, Target } from '../analysis/results.ts';
import { count, ratio, secs } from '../analysis/stats.ts';

const s = (msValue: number): string => (Number.isFinite(msValue) ? secs(msValue / 1_000) : 'n/a');

/** min / median / max of samples (ms), as seconds. */
function spread(samples: readonly number[]): string {
  if (samples.length === 0) return 'n/a';
  const sorted = [...samples].sort((a, b) => a - b);
  return `${s(sorted[0]!)} / ${s(sorted[Math.floor(sorted.length / 2)]!)} / ${s(sorted[sorted.length - 1]!)}`;
}

/** The report's slow-PG section. */
export function slowSection(r: BenchResults): string {
  if (r.slow.length === 0) return '';
  const col = (label: string, f: (x: SlowRun) => string): string[] => [label, ...r.slow.map(f)];
  return [
    '## 5. Slow PG',
    '',
    'The simulator approves in a lognormal time (median 300 ms, σ 1.0) and 10 % of confirms take 15–30 s; 400 payments/s offered for ' +
      '20 s, gate on, 1 worker process. Both settings run in this bench run, on the same code: the product defaults, and the read timeout ' +
      'the project had before (fixed 5 s, no connections reserved for inquiries and cancels). "First confirms/s" counts distinct payments ' +
      "whose first confirm reached the PG in the load's 20 s. The bound is min(offered rate, connections ÷ connection-seconds per payment, " +
      '500 ÷ PG calls per payment); connection-seconds include the gate wait, which a call spends holding its connection.',
    '',
    table(
      ['', ...r.slow.map((x) => x.variant.label)],
      [
        col('first confirms reaching the PG, per second (mean over 20 s)', (x) => x.firstConfirmsPerSecond.toFixed(1)),
        col('bound (payments/s) and ratio to it', (x) => `${x.bound.toFixed(1)} → **${ratio(x.firstConfirmsPerSecond / x.bound)}**`),
        col('PG calls per payment (by type)', (x) => `${x.callsPerPayment.toFixed(2)} (${Object.entries(x.callsByType).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')})`),
        col('mean connection hold per call; connection-seconds per payment', (x) => `${x.meanHoldMs.toFixed(0)} ms; ${x.holdSecondsPerPayment.toFixed(3)} s`),
        col('confirm read timeout in force during the load (2 s samples: min / median / max)', (x) => spread(x.confirmTimeoutMs)),
        col('the observed confirm p75 it follows (same samples)', (x) => spread(x.confirmP75Ms)),
        col('peak connections at the PG', (x) => String(x.peakConnections)),
        col('cancels sent; approvals the PG made not shown APPROVED', (x) => `${x.cancels}; ${x.approvalsNotApproved}`),
        col('202 → final outside the 15–30 s tail: p50 / p99', (x) => `${s(x.toFinal.p50)} / ${s(x.toFinal.p99)}`),
        col('the tail: payments, p50 202 → final', (x) => `${x.toFinal.tail}, ${s(x.toFinal.tailP50)}`),
        col('in doubt', (x) => count(x.outcomes.inDoubt.count)),
        col('429 / 503; PG max in 1,000 ms', (x) => `${x.pg.status429} / ${x.pg.status503}; ${x.pg.maxInWindow}`),
        col('invariants vs PG ledger', (x) => invariantLine(x.outcomes.invariants) + (x.drained ? '' : ' (NOT DRAINED)')),
      ],
    ),
  ].join('\n');
}

/** The report's crash section. */
export function crashSection(r: BenchResults): string {
  if (r.crash.length === 0) return '';
  const col = (label: string, f: (x: CrashRun) => string): string[] => [label, ...r.crash.map(f)];
  return [
    '## 6. Crash',
    '',
    '400 payments/s offered for 30 s at the default simulator; at 10 s one worker process is killed with SIGKILL. "Held" payments ' +
      'were sent to the PG and not final at the kill. A first send\'s lease (its outbox marker) lapses 3 s after its last renewal and the ' +
      'sweeper takes it every SWEEP_INTERVAL_MS (5 s); job locks: WORKER_LOCK_MS 5 s, checked every WORKER_STALLED_CHECK_MS 1.5 s. ' +
      '"Spawn → next PG request" includes the process\'s start (about 2 s on the 2-core bench machine while idle).',
    '',
    table(
      ['', ...r.crash.map((x) => x.label)],
      [
        col('longest time without a PG request (first to last confirm)', (x) => s(x.longestGapMs)),
        col('held payments; restart ("worker started") → the last of them final', (x) => `${x.held}; ${s(x.restartToHeldFinalMs)}`),
        col('restarted process: spawn → next PG request', (x) => s(x.spawnToFirstRequestMs)),
        col('jobs stalled; lock renewals failed', (x) => `${x.stalled}; ${x.lockRenewalFailed}`),
        col('accepted', (x) => `${count(x.intake.accepted)} of ${count(x.intake.offered)}`),
        col('429 / 503', (x) => `${x.pg.status429} / ${x.pg.status503}`),
        col('invariants vs PG ledger', (x) => invariantLine(x.outcomes.invariants) + (x.drained ? '' : ' (NOT DRAINED)')),
      ],
    ),
  ].join('\n');
}

/** The slow and crash profiles' targets, the stalled-job count and the cold-start figure. */
export function degradedTargets(r: BenchResults): Target[] {
  const out: Target[] = [];
  const d = r.slow[0];
  if (d) {
    const clean = invariantsClean(d.outcomes.invariants) && d.drained;
    out.push(
      { name: 'slow: ≥ 250 payments/s have their first confirm reach the PG (mean over 20 s)', met: d.firstConfirmsPerSecond >= 250, figure: `${d.firstConfirmsPerSecond.toFixed(1)}/s` },
      { name: 'slow: ≥ 0.85 of the bound', met: d.firstConfirmsPerSecond / d.bound >= 0.85, figure: `${ratio(d.firstConfirmsPerSecond / d.bound)} of ${d.bound.toFixed(1)}/s` },
      { name: 'slow: PG calls per payment ≤ 1.6', met: d.callsPerPayment <= 1.6, figure: d.callsPerPayment.toFixed(2) },
      { name: 'slow: 0 cancels, every approval shown APPROVED', met: d.cancels === 0 && d.approvalsNotApproved === 0, figure: `${d.cancels} cancels, ${d.approvalsNotApproved} approvals shown otherwise` },
      { name: 'slow: p99 202 → final ≤ 10 s outside the 15–30 s tail', met: d.toFinal.p99 <= 10_000, figure: s(d.toFinal.p99) },
      {
        name: 'slow: 0 × 429, 0 × 503, 0 mismatches',
        met: d.pg.status429 === 0 && d.pg.status503 === 0 && clean,
        figure: `${d.pg.status429} × 429, ${d.pg.status503} × 503, ${invariantLine(d.outcomes.invariants)}`,
      },
    );
  }
  for (const c of r.crash) {
    out.push(
      { name: `crash (${c.label}): longest gap in PG traffic ≤ 3 s`, met: c.longestGapMs <= 3_000, figure: s(c.longestGapMs) },
      { name: `crash (${c.label}): restart → every held payment final ≤ 10 s`, met: c.restartToHeldFinalMs <= 10_000, figure: `${s(c.restartToHeldFinalMs)} (${c.held} held)` },
      { name: `crash (${c.label}): nothing lost, 0 mismatches`, met: invariantsClean(c.outcomes.invariants) && c.drained, figure: invariantLine(c.outcomes.invariants) },
    );
    if (Number.isFinite(c.spawnToFirstRequestMs)) {
      out.push({ name: `crash (${c.label}): the restarted worker's first request within 2 s of its start`, met: c.spawnToFirstRequestMs <= 2_000, figure: s(c.spawnToFirstRequestMs) });
    }
  }
  const stalled = [...r.overload.map((o) => o.stalled), ...r.slow.map((x) => x.stalled)];
  if (stalled.length > 0) {
    out.push({ name: '0 stalled jobs and 0 lock-renewal failures in the overload and slow runs', met: stalled.every((n) => n === 0), figure: `${stalled.reduce((a, n) => a + n, 0)} over ${stalled.length} runs` });
  }
  const gate1 = r.overload.filter((o) => o.config.key === 'gate1');
  if (gate1.length > 0) {
    const seconds = gate1.map((o) => o.pg.firstSeconds[0] ?? 0);
    out.push({
      name: 'overload cold start: ≥ 450 PG requests in the second that starts with the first confirm (stack idle 5 s before the burst)',
      met: seconds.every((n) => n >= 450),
      figure: gate1.map((o) => o.pg.firstSeconds.join(', ')).join(' | ') + ' (first three seconds, per run)',
    });
  }
  return out;
}
