/**
 * Scenario "redis" (issue "Outgrowing one Redis"), in three parts, each on Redis servers of its
 * own started here (redis-server processes on free ports), so that the shared Redis plays no part:
 *
 * 1. Intake with API_PROCESSES=2 against 1: the intake profile's closed loop, rounds taking turns.
 * 2. What REDIS_WAIT_REPLICAS=1 costs intake: the same closed loop on a primary with one replica,
 *    the wait off and on, rounds taking turns.
 * 3. Failover under load: API and worker on a Sentinel group (1 primary, 2 replicas, 3 sentinels;
 *    min-replicas-to-write 1; REDIS_WAIT_REPLICAS=2, both replicas, since either may be promoted), 300 payments/s offered by merchants that retry anything but a 202
 *    or a 4xx with the same key, and the primary killed -9 five times, brought back each time as a
 *    replica. Per kill: how long until the sentinels named a new primary, and until intake answered
 *    202 again to a request sent after the kill. Then every acknowledged payment against the PG's
 *    ledger: lost, not final, mismatched, charged twice; and the PG's rolling-second peak and 429s.
 */
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';
import { maxInRollingWindow } from '@sluice/pg-simulator';
import { checkInvariants, startRedisServer, startSentinelGroup, type InvariantReport, type LedgerEntry, type RedisServer } from '@sluice/test-support';
import type { BenchContext } from '../harness/context.ts';
import { paymentRequest } from '../harness/load.ts';
import { Stack } from '../harness/stack.ts';
import { median, percentile } from '../analysis/stats.ts';
import { drive, type DrivenResult } from './intake.ts';

/** One arm of a closed-loop comparison: the median over its rounds. */
export interface IntakeArm {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Answers other than 202 over all rounds. */
  others: number;
  rounds: number[];
}

/** One kill of the primary and what followed. */
export interface KillResult {
  /** Seconds into the load. */
  atS: number;
  /** Kill → the sentinels name a new primary that answers as one (ms). */
  failoverMs: number;
  /** Kill → the first 202 to a request sent after the kill (ms). */
  resumeMs: number;
}

/** What the scenario measured. */
export interface RedisHaResult {
  connections: number;
  seconds: number;
  processes: { one: IntakeArm; two: IntakeArm };
  wait: { off: IntakeArm; on: IntakeArm };
  failover: {
    rate: number;
    seconds: number;
    offered: number;
    kills: KillResult[];
    /** Requests sent, and their answers by status (`0`: no answer, the connection failed or timed out). */
    requests: number;
    answers: Record<string, number>;
    /** Payments never answered 202 within the merchant's minute of retries. */
    neverAccepted: number;
    invariants: Pick<InvariantReport, 'acknowledged' | 'final'> & { lost: number; notFinal: number; doubleCharges: number; mismatches: number };
    pgMaxInWindow: number;
    pg429: number;
    problems: string[];
  };
}

function arm(results: DrivenResult[]): IntakeArm {
  return {
    rps: median(results.map((r) => r.rps)),
    p50Ms: median(results.map((r) => percentile(r.latency, 50))),
    p99Ms: median(results.map((r) => percentile(r.latency, 99))),
    others: results.reduce((a, r) => a + [...r.status].filter(([k]) => k !== '202').reduce((b, [, n]) => b + n, 0), 0),
    rounds: results.map((r) => r.rps),
  };
}

/** Two API set-ups driven alike, rounds taking turns; each API started fresh for its round. */
async function compare(ctx: BenchContext, label: string, a: { name: string; redisUrl: string; env: Record<string, string> }, b: typeof a): Promise<[IntakeArm, IntakeArm]> {
  const out: [DrivenResult[], DrivenResult[]] = [[], []];
  for (let round = 1; round <= ctx.opts.intakeRounds; round++) {
    for (const [i, side] of [a, b].entries()) {
      const stack = new Stack(ctx.newPrefix(), ctx.sim.pgUrl, { REDIS_URL: side.redisUrl, BACKLOG_MAX_SECONDS: '1000000', ...side.env });
      try {
        const url = await stack.startApi();
        if (side.env.API_PROCESSES) await new Promise((r) => setTimeout(r, 2_000)); // every fork listening
        out[i]!.push(await drive(ctx, `${label}: round ${round}/${ctx.opts.intakeRounds}, ${side.name}`, url, stack.api?.child.pid));
      } finally {
        await stack.stop();
      }
    }
  }
  return [arm(out[0]), arm(out[1])];
}

/** A merchant's create: retried with the same key on anything but a 202 or a 4xx, for up to a minute. */
async function create(agent: Agent, url: string, tag: string, i: number, log: { sentAt: number; answeredAt: number; status: number }[]): Promise<string | null> {
  const req = paymentRequest(tag, i);
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const sentAt = Date.now();
    let status = 0;
    let id: string | null = null;
    try {
      const res = await request(`${url}${req.path}`, { method: 'POST', headers: req.headers, body: req.body, signal: AbortSignal.timeout(10_000), dispatcher: agent });
      status = res.statusCode;
      const body = (await res.body.json()) as { id?: string };
      if (status === 202) id = body.id ?? null;
    } catch {
      status = 0;
    }
    log.push({ sentAt, answeredAt: Date.now(), status });
    if (status === 202) return id;
    if (status >= 400 && status < 500) return null;
    await new Promise((r) => setTimeout(r, 250));
  }
  return null;
}

async function failover(ctx: BenchContext): Promise<RedisHaResult['failover']> {
  const rate = 300;
  const seconds = ctx.opts.quick ? 30 : 55;
  const killEvery = seconds >= 50 ? 10 : 5;
  const group = await startSentinelGroup({
    replicas: 2, sentinels: 3, downAfterMs: 1_000,
    nodeArgs: [['min-replicas-to-write', '1'], ['min-replicas-max-lag', '10'], ['appendonly', 'yes'], ['appendfsync', 'always']],
  });
  const prefix = ctx.newPrefix();
  const stack = new Stack(prefix, ctx.sim.pgUrl, {
    REDIS_SENTINELS: group.sentinelList, REDIS_SENTINEL_NAME: group.name, REDIS_WAIT_REPLICAS: '2', REDIS_WAIT_TIMEOUT_MS: '500',
    REDIS_HANG_MS: '2000', WORKER_LOCK_MS: '5000',
  });
  const agent = new Agent({ connections: 256 });
  try {
    await ctx.sim.fresh();
    const url = await stack.startApi();
    await stack.startWorker(1);
    const tag = randomUUID().slice(0, 8);
    const log: { sentAt: number; answeredAt: number; status: number }[] = [];
    const creates: Promise<string | null>[] = [];
    const t0 = Date.now();
    const total = rate * seconds;
    const load = (async () => {
      for (let i = 0; i < total; i++) {
        const due = t0 + (i * 1_000) / rate;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        creates.push(create(agent, url, tag, i, log));
      }
    })();
    const kills: { at: number; failoverMs: number }[] = [];
    for (let k = 1; k * killEvery < seconds && kills.length < 5; k++) {
      const at = t0 + k * killEvery * 1_000;
      await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
      const port = await group.primaryPort();
      const node = group.nodes.find((n) => n.port === port)!;
      ctx.progress.phase(`redis: kill ${kills.length + 1} of the primary (:${port}), ${rate}/s offered`);
      const killedAt = Date.now();
      await node.kill9();
      const newPort = await group.waitForFailover(port, 30_000);
      kills.push({ at: killedAt, failoverMs: Date.now() - killedAt });
      // Back from its AOF, as a replica of the new primary (not, for a sentinel that has not
      // heard of the failover, the primary again with the writes since lost).
      await node.restart([['replicaof', '127.0.0.1', String(newPort)]]);
    }
    await load;
    const ids = (await Promise.all(creates)).filter((id): id is string => id !== null);
    ctx.progress.phase('redis: draining after the kills');
    const redisPort = await group.primaryPort();
    const redis = group.nodes.find((n) => n.port === redisPort)!.client();
    const until = Date.now() + 180_000;
    while (Date.now() < until && (await redis.zcard(`${prefix}:open`)) > 0) await new Promise((r) => setTimeout(r, 500));
    const views = new Map<string, { id: string; paymentKey: string; status: string }>();
    for (let i = 0; i < ids.length; i += 500) {
      const pipe = redis.pipeline();
      for (const id of ids.slice(i, i + 500)) pipe.hmget(`${prefix}:pay:${id}`, 'paymentKey', 'status');
      const rows = (await pipe.exec()) ?? [];
      rows.forEach(([, row], j) => {
        const [paymentKey, status] = row as [string | null, string | null];
        if (paymentKey && status) views.set(ids[i + j]!, { id: ids[i + j]!, paymentKey, status });
      });
    }
    const ledger = (await ctx.sim.ledger()).payments as unknown as Record<string, LedgerEntry>;
    const inv = checkInvariants(ids, views, ledger);
    const arrivals = await ctx.sim.arrivals(t0 - 1_000);
    const answers: Record<string, number> = {};
    for (const l of log) answers[String(l.status)] = (answers[String(l.status)] ?? 0) + 1;
    const result: KillResult[] = kills.map((k) => {
      const first = log.filter((l) => l.sentAt >= k.at && l.status === 202).reduce((m, l) => Math.min(m, l.answeredAt), Number.POSITIVE_INFINITY);
      return { atS: (k.at - t0) / 1_000, failoverMs: k.failoverMs, resumeMs: first - k.at };
    });
    return {
      rate, seconds, offered: total, kills: result, requests: log.length, answers,
      neverAccepted: total - ids.length,
      invariants: {
        acknowledged: inv.acknowledged, final: inv.final, lost: inv.lost.length, notFinal: inv.notFinal.length,
        doubleCharges: inv.doubleCharges.length, mismatches: inv.mismatches.length,
      },
      pgMaxInWindow: maxInRollingWindow(arrivals.map((a) => a.t), 1_000),
      pg429: arrivals.filter((a) => a.status === 429).length,
      problems: stack.problems().errors,
    };
  } finally {
    await agent.close();
    await stack.stop();
    await group.stop();
  }
}

/** Runs the three parts. */
export async function runRedisHa(ctx: BenchContext): Promise<RedisHaResult> {
  const { progress } = ctx;
  progress.phase('redis: a primary and a replica of its own');
  const primary = await startRedisServer([['appendonly', 'yes'], ['appendfsync', 'always']]);
  let replica: RedisServer | null = null;
  try {
    replica = await startRedisServer([['replicaof', '127.0.0.1', String(primary.port)]]);
    for (let i = 0; i < 200 && !/master_link_status:up/.test(await replica.client().info('replication')); i++) await new Promise((r) => setTimeout(r, 50));
    const [one, two] = await compare(ctx, 'API processes', { name: 'API_PROCESSES=1', redisUrl: primary.url, env: {} }, { name: 'API_PROCESSES=2', redisUrl: primary.url, env: { API_PROCESSES: '2' } });
    const [off, on] = await compare(
      ctx, 'WAIT', { name: 'REDIS_WAIT_REPLICAS=0', redisUrl: primary.url, env: {} },
      { name: 'REDIS_WAIT_REPLICAS=1', redisUrl: primary.url, env: { REDIS_WAIT_REPLICAS: '1' } },
    );
    await replica.stop();
    replica = null;
    await primary.stop();
    // The failover part brings its own Sentinel group.
    const f = await failover(ctx);
    progress.note(
      `redis: API 2 vs 1 ${(two.rps / one.rps).toFixed(3)}; WAIT on vs off ${(on.rps / off.rps).toFixed(3)}; ` +
        `kills resumed in ${f.kills.map((k) => (k.resumeMs / 1_000).toFixed(1)).join(', ')} s; lost ${f.invariants.lost}, double ${f.invariants.doubleCharges}`,
    );
    return { connections: ctx.opts.intakeConnections, seconds: ctx.opts.intakeSeconds, processes: { one, two }, wait: { off, on }, failover: f };
  } finally {
    await replica?.stop();
    await primary.stop();
  }
}
