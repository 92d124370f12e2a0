/**
 * Several PGs, one of them down (issue "Several PGs and a fair share"): two providers, each a
 * simulator of its own, one worker process. `pga` (500/s) is offered more than it takes, so it
 * is backlogged throughout; `pgb` (200/s) gets a small steady load and refuses connections for
 * 10 s of the 30 s run. The same run without `pgb` ("alone") is the baseline.
 *
 * Measured: pga's confirms reaching it while both are loaded (from 2 s in to the end of the
 * load), against alone; every pgb payment final after pgb recovers, and as pgb's ledger holds it;
 * nothing of one PG's reaching the other.
 */
import { randomUUID } from 'node:crypto';
import { startSimulatorProcess } from '@sluice/test-support';
import { analysePg } from '../analysis/pg-analysis.ts';
import { BacklogSampler, type BenchContext } from '../harness/context.ts';
import { createPool, openLoop } from '../harness/load.ts';
import { readPayments } from '../harness/redis-tools.ts';
import { SimClient } from '../harness/sim-client.ts';
import { freePort, PG_SECRET_KEY, Stack, stopProc } from '../harness/stack.ts';

/** One run's figures. */
export interface ProvidersRun {
  /** pga's confirms that reached it from 2 s in to the end of the load, per second. */
  pgaConfirmsPerSecond: number;
  pgaMaxInWindow: number;
  pga429: number;
  pgbAccepted: number;
  pgbMaxInWindow: number;
  pgb429: number;
}

/** What the profile measured. */
export interface ProvidersResult {
  seconds: number;
  downSeconds: [number, number];
  alone: ProvidersRun;
  both: ProvidersRun;
  /** pgb's payments: final after it recovered, and matching its ledger. */
  pgb: { accepted: number; final: number; approved: number; mismatches: number; doubleCharges: number; drainedSeconds: number };
  /** Payments found at the other PG than their own (either way). */
  crossed: number;
  problems: string[];
}

const FINAL = new Set(['APPROVED', 'DECLINED', 'FAILED', 'CANCELED']);
const SECONDS = 30;
const DOWN: [number, number] = [10, 20];
const PGA = { id: 'pga', rate: 600, limit: 500 };
const PGB = { id: 'pgb', rate: 100, limit: 200 };

/** Confirms (`c` in the arrival log) that reached a simulator between two times (ms epoch). */
function confirmsBetween(arrivals: { t: number; endpoint: string; status: number }[], from: number, to: number): number {
  return arrivals.filter((a) => a.endpoint === 'c' && a.t >= from && a.t < to).length;
}

async function runOnce(ctx: BenchContext, simB: SimClient | null, label: string): Promise<{ run: ProvidersRun; prefix: string; pgbIds: string[]; problems: string[]; drainedAt: number }> {
  const { sim, progress } = ctx;
  await sim.fresh({ rateLimit: PGA.limit });
  if (simB) await simB.fresh({ rateLimit: PGB.limit });
  const prefix = ctx.newPrefix();
  const providers = [{ id: PGA.id, baseUrl: sim.pgUrl, rateLimit: PGA.limit }, ...(simB ? [{ id: PGB.id, baseUrl: simB.pgUrl, rateLimit: PGB.limit }] : [])];
  const stack = new Stack(prefix, sim.pgUrl, { PROVIDERS: JSON.stringify(providers), PG_SECRET_KEY });
  try {
    await stack.startWorker(1);
    const apiUrl = await stack.startApi();
    const sampler = new BacklogSampler(ctx, prefix);
    sampler.start();
    progress.phase(`${label}: pga ${PGA.rate}/s${simB ? `, pgb ${PGB.rate}/s (refusing ${DOWN[0]}–${DOWN[1]} s)` : ''} for ${SECONDS} s`);
    const startedAt = Date.now();
    const outage = simB
      ? (async () => {
          await new Promise((r) => setTimeout(r, DOWN[0] * 1_000));
          await simB.configure({ outage: 'refuse', outageMs: (DOWN[1] - DOWN[0]) * 1_000 });
        })()
      : Promise.resolve();
    const loads = [PGA, ...(simB ? [PGB] : [])].map(async (p) => {
      const pool = createPool(apiUrl, p.rate >= 300 ? 128 : 16);
      const r = await openLoop(pool, { rate: p.rate, seconds: SECONDS, tag: `${p.id}-${randomUUID().slice(0, 8)}`, provider: p.id });
      await pool.close();
      return r;
    });
    const [a, b] = await Promise.all(loads);
    await outage;
    const loadEnd = startedAt + SECONDS * 1_000;
    progress.phase(`${label}: drain`);
    const lastAnswerAt = Math.max(a!.lastAnswerAt, b?.lastAnswerAt ?? 0);
    await sampler.waitEmpty(lastAnswerAt, 180_000);
    await sampler.stop();
    const drainedAt = Date.now();
    const arrivalsA = await sim.arrivals();
    const pgA = analysePg(arrivalsA, sampler.samples, drainedAt);
    const arrivalsB = simB ? await simB.arrivals() : [];
    const pgB = simB ? analysePg(arrivalsB, sampler.samples, drainedAt) : null;
    const run: ProvidersRun = {
      pgaConfirmsPerSecond: confirmsBetween(arrivalsA, startedAt + 2_000, loadEnd) / (SECONDS - 2),
      pgaMaxInWindow: pgA.maxInWindow,
      pga429: pgA.status429,
      pgbAccepted: b?.accepted ?? 0,
      pgbMaxInWindow: pgB?.maxInWindow ?? 0,
      pgb429: pgB?.status429 ?? 0,
    };
    progress.note(`${label}: pga ${run.pgaConfirmsPerSecond.toFixed(1)} confirms/s, max/window ${run.pgaMaxInWindow}${simB ? `; pgb max/window ${run.pgbMaxInWindow}` : ''}`);
    return { run, prefix, pgbIds: b?.ids ?? [], problems: stack.problems().errors, drainedAt: drainedAt - startedAt };
  } finally {
    await stack.stop();
  }
}

/** Runs the profile: pga alone, then both with pgb refusing for a while. */
export async function runProviders(ctx: BenchContext): Promise<ProvidersResult> {
  const adminPort = await freePort();
  const procB = await startSimulatorProcess({ SIM_ADMIN_PORT: String(adminPort), SIM_SEED: '17' });
  const simB = new SimClient(`http://127.0.0.1:${adminPort}`, procB.url);
  try {
    const alone = await runOnce(ctx, null, 'providers, pga alone');
    const both = await runOnce(ctx, simB, 'providers, pgb down for 10 s');
    const [ledgerA, ledgerB] = await Promise.all([ctx.sim.ledger(), simB.ledger()]);
    const rows = await readPayments(ctx.redis, both.prefix, both.pgbIds);
    let final = 0;
    let approved = 0;
    let mismatches = 0;
    let doubleCharges = 0;
    for (const row of rows) {
      if (row.status && FINAL.has(row.status)) final++;
      if (row.status === 'APPROVED') approved++;
      const held = row.paymentKey ? ledgerB.payments[row.paymentKey] : undefined;
      if ((held?.chargeCount ?? 0) > 1) doubleCharges++;
      const charged = held?.status === 'DONE' && !held.refunded;
      if ((row.status === 'APPROVED') !== charged) mismatches++;
    }
    const crossed =
      Object.keys(ledgerA.payments).filter((k) => k.includes(`_${PGB.id}-`)).length + Object.keys(ledgerB.payments).filter((k) => k.includes(`_${PGA.id}-`)).length;
    return {
      seconds: SECONDS,
      downSeconds: DOWN,
      alone: alone.run,
      both: both.run,
      pgb: { accepted: both.pgbIds.length, final, approved, mismatches, doubleCharges, drainedSeconds: both.drainedAt / 1_000 },
      crossed,
      problems: [...alone.problems, ...both.problems],
    };
  } finally {
    await stopProc(procB.proc, 5_000).catch(() => undefined);
  }
}
