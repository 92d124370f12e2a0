/**
 * Scenario 2, intake: saturation throughput of `POST /v1/payments` against a no-op Express JSON
 * route, both driven closed-loop by the same generator at the same concurrency in the same run.
 * The Sluice side runs the API alone (no worker competing for the two cores), with a backlog
 * ceiling far above what the run can fill.
 */
import { randomUUID } from 'node:crypto';
import { startProcess } from '@sluice/test-support';
import type { BenchContext } from '../harness/context.ts';
import { closedLoop, paymentRequest, type ClosedLoopResult } from '../harness/load.ts';
import { deleteMatching } from '../harness/redis-tools.ts';
import { Stack, stopProc } from '../harness/stack.ts';
import { cpuDelta, sampleCpu, type CpuSample } from '../analysis/cpu.ts';
import { median } from '../analysis/stats.ts';

/** A closed-loop result with the CPU seconds each side spent in the measured window. */
export interface DrivenResult extends ClosedLoopResult {
  /** server process, Redis (whole server), and the load generator (the bench process). */
  cpu: { server: number; redis: number; bench: number; wallSeconds: number };
}

/** Drives `url`'s intake closed-loop (the options' connections, warm-up and seconds), with the server's and Redis' CPU over the measured window. */
export async function drive(ctx: BenchContext, label: string, url: string, serverPid: number | undefined): Promise<DrivenResult> {
  const { opts, progress } = ctx;
  let before: Promise<CpuSample> | null = null;
  let from = 0;
  // CPU is read over the measured window only, not the warm-up.
  const timer = setTimeout(() => {
    from = Date.now();
    before = sampleCpu({ server: serverPid }, ctx.redis);
  }, opts.intakeWarmup * 1_000);
  progress.phase(`intake: ${label}, ${opts.intakeConnections} connections, ${opts.intakeWarmup}s warm-up + ${opts.intakeSeconds}s`);
  const tag = randomUUID().slice(0, 8);
  const res = await closedLoop(url, {
    connections: opts.intakeConnections,
    warmupS: opts.intakeWarmup,
    seconds: opts.intakeSeconds,
    request: (i) => paymentRequest(tag, i),
    onTick: (n) => {
      progress.state.offered = n;
      progress.state.accepted = n;
    },
  });
  clearTimeout(timer);
  const after = await sampleCpu({ server: serverPid }, ctx.redis);
  const d = before ? cpuDelta(await before, after) : {};
  const nan = Number.NaN;
  return { ...res, cpu: { server: d.server ?? nan, redis: d.redis ?? nan, bench: d.bench ?? nan, wallSeconds: (Date.now() - from) / 1_000 } };
}

/** What the intake scenario measured: Sluice's and the no-op's throughput and CPU per request, and their ratio. */
export interface IntakeResult {
  connections: number;
  warmupS: number;
  seconds: number;
  /** One entry per round; each round drives the no-op server, then Sluice. */
  noop: DrivenResult[];
  sluice: DrivenResult[];
  /** Sluice req/s ÷ no-op req/s, per round. */
  ratios: number[];
  /** The median of the rounds' ratios: a neighbour's burst spoils one round, not the figure. */
  ratio: number;
}

/** Runs the intake scenario: the no-op server and Sluice's API, driven alike. */
export async function runIntake(ctx: BenchContext): Promise<IntakeResult> {
  const { opts, progress } = ctx;
  progress.phase('intake: starting the no-op server and the Sluice API (no worker)');
  const noopProc = startProcess('apps/bench/src/profiles/noop-server.ts', { PORT: '0' });
  const prefix = ctx.newPrefix();
  const stack = new Stack(prefix, ctx.sim.pgUrl, { BACKLOG_MAX_SECONDS: '1000000' });
  const noop: DrivenResult[] = [];
  const sluice: DrivenResult[] = [];
  try {
    const m = await noopProc.waitFor(/noop listening on (\d+)/);
    const noopUrl = `http://127.0.0.1:${m[1]}`;
    const sluiceUrl = await stack.startApi();
    // Rounds alternate the two servers, so that a slow spell on the shared machine hits one
    // round of each rather than one server's whole measurement.
    for (let round = 1; round <= opts.intakeRounds; round++) {
      noop.push(await drive(ctx, `round ${round}/${opts.intakeRounds}, no-op Express`, noopUrl, noopProc.child.pid));
      sluice.push(await drive(ctx, `round ${round}/${opts.intakeRounds}, Sluice POST /v1/payments`, sluiceUrl, stack.api?.child.pid));
    }
  } finally {
    await stopProc(noopProc, 5_000);
    await stack.stop();
    await deleteMatching(ctx.redis, `${prefix}:*`);
  }
  const ratios = sluice.map((s, i) => s.rps / (noop[i]?.rps ?? Number.NaN));
  const ratio = median(ratios);
  progress.note(`intake: ratios ${ratios.map((r) => r.toFixed(3)).join(', ')} → median ${ratio.toFixed(3)}`);
  return { connections: opts.intakeConnections, warmupS: opts.intakeWarmup, seconds: opts.intakeSeconds, noop, sluice, ratios, ratio };
}
