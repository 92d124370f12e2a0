/**
 * The report's "Observations": sentences computed from the figures, so that a reader sees why a
 * target was missed (a PG-side stall, the gate's margin, the drain's tail, CPU per request)
 * without redoing the arithmetic. Nothing here is hand-written about a particular run.
 */
import { testConfig } from '@sluice/config';
import type { OverloadRun } from '../profiles/overload.ts';
import { machineShares, type BenchResults } from './results.ts';
import { count, median, ms, percentile, ratio, secs } from './stats.ts';

/**
 * What the margin leaves for delivery and the PG's read: the send guard lets a send be up to the
 * margin less this late. And the probe's spacing: a stall can outlast the slowest probe by it.
 */
const { GATE_MARGIN_MIN_MS: DELIVERY_MS } = testConfig();
const PROBE_EVERY_MS = 20;

function violations(r: OverloadRun): string | null {
  const v = r.violationStalls;
  if (v.length === 0) return null;
  const stalled = v.filter((e) => e.stall && e.marginMs !== null && e.stall.rttMs > e.marginMs);
  const worst = v.reduce((a, e) => (e.count > a.count ? e : a));
  const example = stalled[0];
  const what =
    stalled.length > 0 && example?.stall
      ? `In ${stalled.length} of them a simulator probe in the second before took longer than the gate's margin then ` +
        `(e.g. ${ms(example.stall.rttMs)} vs ${ms(example.marginMs ?? Number.NaN)}, bench timer lag ${ms(example.stall.benchLagMs)}): the ` +
        "simulator's event loop stalled, and requests that had been sent apart were read, and counted, together. The gate spaces sends; " +
        'a PG-side read delay longer than its margin is outside what it measures.'
      : worst.stall && worst.stall.rttMs + PROBE_EVERY_MS > DELIVERY_MS
        ? `Around the worst a simulator probe took ${ms(worst.stall.rttMs)} (probes ${PROBE_EVERY_MS} ms apart: a stall of up to ` +
          `${ms(worst.stall.rttMs + PROBE_EVERY_MS)}), less than the margin (${ms(worst.marginMs ?? Number.NaN)}) but more than the ${DELIVERY_MS} ms it ` +
          'leaves for delivery once a send has used the lateness the send guard allows: a stall and late sends together can explain it. ' +
          `The arrivals over it: longest gap ${ms(worst.gapMs)}, most in 50 ms ${worst.densest50} (the gate's pace is about 24).`
        : 'No simulator stall longer than the margin was seen around them: look at the sending side. ' +
          `The arrivals over the worst: longest gap ${ms(worst.gapMs)}, most in 50 ms ${worst.densest50} (the gate's pace is about 24): ` +
          (worst.gapMs > (worst.marginMs ?? Number.POSITIVE_INFINITY)
            ? 'requests were held past the margin, then read together.'
            : 'no hole longer than the margin: they went out closer together than their slots.');
  return (
    `**${r.config.key} #${r.run}**: ${v.length} over-limit episode(s), up to ${Math.max(...v.map((e) => e.count))} in a rolling second, ` +
    `${r.pg.status429} × 429. ${what}`
  );
}

function utilisation(runs: readonly OverloadRun[]): string | null {
  if (runs.length === 0) return null;
  const u = median(runs.map((r) => r.pg.utilisation));
  const r = [...runs].sort((a, b) => a.pg.utilisation - b.pg.utilisation)[Math.floor(runs.length / 2)]!;
  const unused = r.slotsGranted > 0 ? (100 * (r.slotsGranted - r.pg.requests)) / r.slotsGranted : Number.NaN;
  const margin = r.margin?.median ?? Number.NaN;
  return (
    `**Utilisation** (gate, 1 process, median ${ratio(u)}; the median run, #${r.run}): while confirms were still going out the PG got ` +
    `${ratio(r.pg.sendPhaseUtilisation)} of its budget (steady ${count(r.pg.steadyRps)}/s). The gate's margin was ${ms(margin)} (median), ` +
    `which caps it at ${count(500 / (1 + margin / 1000))}/s, and ${unused.toFixed(1)} % of its slots went unused. Then the last ` +
    `${secs(r.pg.tailSeconds)} of the ${secs(r.drainSeconds)} drain were the approval tail with nothing left to send (slow approvals, and ` +
    'approvals past their read timeout resolved by an inquiry), which the definition counts as idle budget.'
  );
}

/** The report's observations, computed from the figures. */
export function observations(r: BenchResults): string[] {
  const out: string[] = [];
  const gate1 = r.overload.filter((o) => o.config.key === 'gate1');
  for (const o of r.overload.filter((x) => x.config.key !== 'baseline')) {
    const line = violations(o);
    if (line) out.push(line);
  }
  const u = utilisation(gate1);
  if (u) out.push(u);
  const base = r.overload.find((o) => o.config.key === 'baseline');
  if (base) {
    out.push(
      `**Baseline**: BullMQ's limiter starts at most 500 jobs per fixed 1,000 ms window, which is not the PG's rolling window and does not ` +
        `count retries: up to ${base.pg.maxInWindow} requests reached the PG in a rolling second and ${count(base.pg.status429)} were ` +
        `answered 429 (${((100 * base.pg.status429) / Math.max(1, base.pg.requests)).toFixed(1)} % of its PG requests; ` +
        `${(base.pg.requests / Math.max(1, base.intake.accepted)).toFixed(2)} PG calls per payment).`,
    );
  }
  if (r.overload.length > 0) {
    const shares = r.overload.map((o) => machineShares(o));
    out.push(
      `**The machine**: during the overload runs its ${r.machine.cores} cores were ${shares.map((m) => `${Math.round(100 * m.busy)} %`).join(', ')} ` +
        `busy, of which ${shares.map((m) => `${Math.round(100 * m.others)} %`).join(', ')} was not accounted to the stack's processes (other ` +
        'work on this shared machine, and kernel time such as loopback networking). ' +
        'Stalls of a process then last as long as it waits for a core, which is what the simulator probe and the Redis PING rows measure.',
    );
    const lat = r.overload.map((o) => `${o.config.key} #${o.run} ${ms(percentile(o.intake.latency, 50))} / ${ms(percentile(o.intake.latency, 99))}`);
    out.push(
      `**Intake under overload** (p50 / p99 from send): ${lat.join('; ')}. Intake competes with the worker(s), Redis and the simulator for ` +
        'the same 2 cores; the more worker processes, the less CPU is left for the API.',
    );
  }
  const i = r.intake;
  if (i) {
    type Run = { cpu: { server: number; redis: number; bench: number }; requests: number };
    const per = (xs: Run[], f: (x: Run) => number) => median(xs.map((x) => (f(x) * 1e6) / Math.max(1, x.requests)));
    const sl = per(i.sluice, (x) => x.cpu.server);
    const no = per(i.noop, (x) => x.cpu.server);
    const slAll = per(i.sluice, (x) => x.cpu.server + x.cpu.redis + x.cpu.bench);
    const noAll = per(i.noop, (x) => x.cpu.server + x.cpu.redis + x.cpu.bench);
    const redis = per(i.sluice, (x) => x.cpu.redis);
    // What Redis costs Sluice beyond the no-op's run (the whole server, so neighbours cancel out).
    const redisExtra = Math.max(0, redis - per(i.noop, (x) => x.cpu.redis));
    out.push(
      `**Intake**: the API process spends ${sl.toFixed(0)} µs of CPU per payment against ${no.toFixed(0)} µs for the no-op route ` +
        `(×${(sl / no).toFixed(2)}), and Redis another ${redis.toFixed(0)} µs. Server, Redis and load generator share the 2 cores, so ` +
        `per request the whole machine spends ${slAll.toFixed(0)} µs for Sluice against ${noAll.toFixed(0)} µs for the no-op ` +
        `(ratio ${ratio(noAll / slAll)}; throughput ratio measured ${ratio(i.ratio)}). When the cores are the limit, the throughput ratio ` +
        'tends to that CPU ratio; when they are not (a server short of one core), it is higher. ' +
        `Redis's part alone bounds it: an API that cost no more CPU than the no-op route would still leave ${redisExtra.toFixed(0)} µs ` +
        `of Redis work per payment on the same cores, a ratio of at most ${ratio(noAll / (noAll + redisExtra))} on this machine.`,
    );
  }
  const l = r.latency[0];
  if (l) {
    out.push(
      `**Latency-bound**: ${l.achieved.toFixed(1)} PG requests/s against a Little's-law ceiling of ${l.littleCeiling.toFixed(1)}/s ` +
        `(${l.connections} connections ÷ ${Math.round(l.meanMs)} ms mean approval), peak ${l.peakConnections} connections, ` +
        `${l.status429} × 429, ${l.status503} × 503: the connection cap binds and the rate budget goes mostly unused, as it must.`,
    );
  }
  return out;
}
